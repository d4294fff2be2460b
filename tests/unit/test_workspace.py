"""Workspace: manifests, completeness, and the lock that keeps two runs apart."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from mason.core.errors import LockError
from mason.pipeline.workspace import Workspace


def test_creating_a_workspace_touches_nothing(tmp_path):
    ws = Workspace(tmp_path / "ws")
    assert ws.read_manifest("ingest", "k") is None
    assert not (tmp_path / "ws").exists()


def test_manifest_roundtrip_and_completeness(tmp_path):
    ws = Workspace(tmp_path)
    ws.write_manifest("ingest", "k1", {"status": "running"})
    assert not ws.is_complete("ingest", "k1")
    ws.write_manifest("ingest", "k1", {"status": "complete"})
    assert ws.is_complete("ingest", "k1")
    (ws.artifact_dir("ingest", "k2")).mkdir(parents=True)
    (ws.artifact_dir("ingest", "k2") / "manifest.json").write_text("{broken")
    assert not ws.is_complete("ingest", "k2")
    ws.reset_artifact("ingest", "k1")
    assert not ws.artifact_dir("ingest", "k1").exists()


def test_second_holder_fails_clearly_with_pid(tmp_path):
    ws = Workspace(tmp_path)
    holder = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
            import sys, time
            from mason.pipeline.workspace import Workspace
            with Workspace({str(tmp_path)!r}).lock():
                print("locked", flush=True)
                time.sleep(30)
        """)],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(LockError, match=f"pid {holder.pid}"):
            with ws.lock(wait=0.3):
                pass
    finally:
        holder.kill()
        holder.wait()
    # the kill released it
    with ws.lock():
        pass
