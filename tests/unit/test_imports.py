"""Importing mason (and building the CLI) must stay light: no torch, no transformers, no side effects."""

from __future__ import annotations

import json
import os
import subprocess
import sys

HEAVY = ["torch", "transformers", "markitdown", "pypdfium2", "tokenizers", "peft", "trl"]


def _modules_after(code: str, cwd) -> list[str]:
    out = subprocess.run(
        [sys.executable, "-c", code + "\nimport sys, json; print(json.dumps(sorted(sys.modules)))"],
        capture_output=True, text=True, check=True, cwd=cwd,
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def test_import_mason_is_light_and_has_no_side_effects(tmp_path):
    mods = _modules_after("import mason; mason.PipelineConfig; mason.IngestConfig", tmp_path)
    assert not [m for m in HEAVY if m in mods]
    assert os.listdir(tmp_path) == []


def test_cli_module_and_help_do_not_import_heavy_libraries(tmp_path):
    mods = _modules_after(
        "import sys\nfrom mason.cli import app\nsys.argv=['mason','--help']\n"
        "try:\n    app()\nexcept SystemExit:\n    pass",
        tmp_path,
    )
    assert not [m for m in HEAVY if m in mods]
    assert os.listdir(tmp_path) == []
