"""Fixtures shared by every test module. Keep this file small and general."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny Llama model folder (2 layers, 512-token BPE tokenizer, ChatML template), built once
    per test session with `mason.models.build_tiny_model`. Treat it as read-only: copy it first
    if a test must change it."""
    from mason.models.tiny import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny-model") / "model")


@pytest.fixture
def mason_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty MASON_HOME for this test, so nothing reads or writes the user's real cache."""
    home = tmp_path / "mason-home"
    home.mkdir()
    monkeypatch.setenv("MASON_HOME", str(home))
    return home
