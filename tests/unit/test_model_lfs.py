"""Git LFS pointer files where model files should be: one clear error naming `git lfs pull`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mason.core.errors import ModelNotFoundError
from mason.models import check_available, resolve_model
from mason.models.lfs import check_model_folder, check_not_lfs_pointer, lfs_pointer_size

POINTER = (
    "version https://git-lfs.github.com/spec/v1\n"
    "oid sha256:4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393\n"
    "size 538976288\n"
)


def model_folder(tmp: Path, weights: str | bytes) -> Path:
    folder = tmp / "model"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"model_type": "llama"}))
    data = weights.encode() if isinstance(weights, str) else weights
    (folder / "model.safetensors").write_bytes(data)
    return folder


def test_pointer_files_are_recognized(tmp_path: Path) -> None:
    pointer = tmp_path / "model.safetensors"
    pointer.write_text(POINTER)
    assert lfs_pointer_size(pointer) == 538976288
    no_size = tmp_path / "other.gguf"
    no_size.write_text("version https://git-lfs.github.com/spec/v1\noid sha256:00\n")
    assert lfs_pointer_size(no_size) == 0
    real = tmp_path / "real.safetensors"
    real.write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}      ")
    big = tmp_path / "big.gguf"
    big.write_bytes(POINTER.encode() + b"x" * 2000)  # over the spec's 1024 bytes: not a pointer
    assert lfs_pointer_size(real) is None and lfs_pointer_size(big) is None
    assert lfs_pointer_size(tmp_path / "missing") is None
    check_not_lfs_pointer([real, big])  # no error


def test_local_model_folder_with_pointer_weights(tmp_path: Path) -> None:
    folder = model_folder(tmp_path, POINTER)
    (folder / "tokenizer.json").write_text(POINTER)
    ref = resolve_model(str(folder))
    with pytest.raises(ModelNotFoundError) as e:
        check_available(ref)
    message = e.value.message
    assert "is a Git LFS pointer" in message and "model.safetensors" in message
    assert "514.0 MiB" in message and "and 1 more: tokenizer.json" in message
    assert "git lfs pull" in e.value.hint
    (folder / "model.safetensors").write_bytes(b"\x08" + b"\x00" * 7 + b"{}      ")
    (folder / "tokenizer.json").write_text("{}")
    check_available(ref)
    check_model_folder(folder)


def test_gguf_pointer(tmp_path: Path) -> None:
    gguf = tmp_path / "model-q4.gguf"
    gguf.write_text(POINTER)
    with pytest.raises(ModelNotFoundError, match="Git LFS pointer") as e:
        check_available(resolve_model(str(gguf)))
    assert "git lfs pull" in e.value.hint


@pytest.mark.parametrize("fmt", ["merged", "gguf", "onnx"])
def test_every_runtime_names_git_lfs_pull(tmp_path: Path, fmt: str) -> None:
    """`mason chat` on a clone without Git LFS: the runtime says so before loading anything."""
    pytest.importorskip("transformers")
    from mason.runtime.base import open_runtime

    if fmt == "merged":
        path = model_folder(tmp_path, POINTER)
    elif fmt == "gguf":
        pytest.importorskip("llama_cpp")
        path = tmp_path / "model.gguf"
        path.write_text(POINTER)
    else:
        pytest.importorskip("onnxruntime_genai")
        path = tmp_path / "onnx"
        path.mkdir()
        (path / "genai_config.json").write_text("{}")
        (path / "model.onnx").write_text(POINTER)
    with pytest.raises(ModelNotFoundError, match="Git LFS pointer") as err:
        open_runtime(str(path), format=fmt)
    assert "git lfs pull" in err.value.hint
