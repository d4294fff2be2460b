"""The `mason init` quickstart project, optionally without its (minutes-long) training task."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

TRAINING_MARK = "\n# Task `training`"


def init_demo(folder: Path, *, training: bool = False) -> Path:
    """Run `mason init folder`; without `training`, cut the training section off the YAML.

    Returns the pipeline.yaml path.
    """
    subprocess.run([sys.executable, "-m", "mason", "init", str(folder)], check=True, capture_output=True)
    pipeline = folder / "pipeline.yaml"
    if not training:
        text = pipeline.read_text()
        assert TRAINING_MARK in text, "the quickstart template changed: update tests/helpers/demo.py"
        pipeline.write_text(text.split(TRAINING_MARK, 1)[0] + "\n")
    return pipeline
