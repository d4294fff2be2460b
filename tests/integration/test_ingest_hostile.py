"""The hostile-input folder at full size (a DOCX whose member inflates to 200 MB), ingested in a child
process whose peak memory is measured with `resource`: bounded, every bad file skipped, nothing leaked."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers.hostile import PASSWD_MARK, SECRET, hostile_folder

ROOT = Path(__file__).resolve().parents[2]
#: before the zip checks, this folder drove ingest to 1.6 GB; imports and parsers take ~250 MB
PEAK_RSS_LIMIT_MB = 700

# Linux keeps a process's ru_maxrss across fork + exec, so a child started by a big pytest process
# reports the parent's peak: VmHWM (this address space's own peak) is read when there is one
_CHILD = """
import json, re, resource, sys
sys.path.insert(0, {root!r})
from mason.ingest import IngestConfig
from mason.ingest.stage import ingest_documents
result = ingest_documents(IngestConfig(path="docs", max_file_mb=2), {base!r}, {out!r}, show_progress=False)
try:
    peak_mb = int(re.search(r"VmHWM:\\s*(\\d+)", open("/proc/self/status").read()).group(1)) / 1024
except (OSError, AttributeError):
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({{"skipped": result.details["skipped"], "documents": result.counts["documents"], "peak_mb": peak_mb}}))
"""


@pytest.mark.slow
def test_hostile_folder_with_a_200_mb_zip_bomb_in_bounded_memory(tmp_path: Path) -> None:
    docs, expected = hostile_folder(tmp_path, bomb_mb=200)
    assert (docs / "bomb.docx").stat().st_size < 2 << 20  # 200 MB inside, under 2 MB on disk
    code = _CHILD.format(root=str(ROOT), base=str(tmp_path), out=str(tmp_path / "out"))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    kinds = {s["doc"]: s["kind"] for s in report["skipped"]}
    assert kinds == {d: k for d, k in expected.items() if k}
    assert "zip bomb" in next(s["reason"] for s in report["skipped"] if s["doc"] == "bomb.docx")
    assert report["documents"] == sum(k is None for k in expected.values())
    assert report["peak_mb"] < PEAK_RSS_LIMIT_MB, f"peak RSS {report['peak_mb']:.0f} MB"
    for name in ("documents.jsonl", "chunks.jsonl"):
        text = (tmp_path / "out" / name).read_text()
        assert SECRET not in text and PASSWD_MARK not in text
    # the stage warned once per bad file, naming it
    for doc in kinds:
        assert f"skipped {doc}:" in proc.stderr


@pytest.mark.slow
def test_zip_bomb_under_the_size_limit_is_caught_by_its_ratio(tmp_path: Path) -> None:
    """With the default 256 MB limit a 200 MB member passes the total check: its ratio gives it away."""
    from mason.ingest.parsers import ParseError, parse_document

    docs, _ = hostile_folder(tmp_path, bomb_mb=200)
    with pytest.raises(ParseError) as err:
        parse_document(docs / "bomb.docx")
    assert err.value.kind == "unsafe" and "x its packed size" in err.value.reason
