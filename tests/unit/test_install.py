"""The install story stays true: one portable llama.cpp flag set everywhere, installs through the
tested constraints, and a crash in llama.cpp named by its real cause."""

from __future__ import annotations

import re
import signal
import subprocess
from pathlib import Path

import pytest

from mason.core.errors import MasonError
from mason.runtime import llamacpp

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")
CI = (ROOT / ".ci" / "run").read_text(encoding="utf-8")


def _tracked_files() -> list[Path]:
    try:
        out = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout")
    return [ROOT / line for line in out.splitlines() if not line.startswith("tests/fixtures/")]


def test_no_flag_anywhere_turns_on_avx512_or_amx() -> None:
    # an AVX-512 build dies with SIGILL on AVX2-only CPUs; AMX kernels segfault on some Xeons
    bad = re.compile(r"GGML_(?:AVX512\w*|AMX\w*)=ON")
    offenders = [str(p.relative_to(ROOT)) for p in _tracked_files()
                 if p.is_file() and p.suffix not in (".docx", ".png") and bad.search(p.read_text(errors="replace"))]
    assert offenders == []


def test_readme_ci_and_hints_use_the_same_flags() -> None:
    flags = llamacpp.LLAMA_CMAKE_ARGS
    assert f'CMAKE_ARGS="{flags}"' in CI
    assert README.count(f'CMAKE_ARGS="{flags}"') >= 2  # the test command and the stand-alone install
    assert flags in llamacpp.INSTALL_HINT and flags in llamacpp.REBUILD_HINT


def test_ci_runs_the_readme_test_command_through_the_constraints() -> None:
    command = next(line for line in CI.splitlines() if "python -m pytest" in line)
    assert command in README
    assert "-c constraints.txt" in command
    quickstart = next(line for line in README.splitlines() if "mason run demo/pipeline.yaml" in line
                      and line.startswith("pip install"))
    assert "-c constraints.txt" in quickstart
    pins = [line for line in (ROOT / "constraints.txt").read_text().splitlines() if line and line[0] != "#"]
    assert all(re.fullmatch(r"[A-Za-z0-9_.\-]+==[^\s=]+", pin) for pin in pins), "only exact pins"
    names = {pin.split("==")[0].lower().replace("_", "-") for pin in pins}
    assert {"torch", "transformers", "lxml", "mammoth", "markitdown", "llama-cpp-python"} <= names
    assert "mason" not in names


@pytest.mark.parametrize(
    ("sig", "features", "expected"),
    [
        (signal.SIGILL, {"avx2"}, "AVX-512"),
        (signal.SIGSEGV, {"avx2", "avx512f", "amx_tile"}, "AMX"),
        (signal.SIGSEGV, {"avx2"}, "built for another machine"),
    ],
)
def test_crash_cause_names_the_instruction_set(monkeypatch, sig, features, expected) -> None:
    monkeypatch.setattr(llamacpp, "cpu_features", lambda: features)
    assert expected in llamacpp.crash_cause(int(sig))


def test_an_illegal_instruction_in_the_child_says_so() -> None:
    # signal.raise_signal(SIGILL) in the child: what an AVX-512 llama.cpp does on an AVX2-only CPU
    with pytest.raises(MasonError) as e:
        llamacpp.run_isolated("signal:raise_signal", int(signal.SIGILL), what="llama.cpp check")
    assert f"crashed (signal {int(signal.SIGILL)}): illegal instruction" in e.value.message
    assert "GGML_AVX512=OFF" in (e.value.hint or "") and "pip cache remove llama_cpp_python" in (e.value.hint or "")


def test_probe_reports_an_unreadable_gguf(tmp_path: Path) -> None:
    pytest.importorskip("llama_cpp")
    bad = tmp_path / "broken.gguf"
    bad.write_bytes(b"GGUF" + b"\0" * 64)
    with pytest.raises(MasonError) as e:
        llamacpp.probe_llama_cpp(str(bad))
    assert "broken.gguf" in e.value.message
