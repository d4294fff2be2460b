"""ONNX export and runtime: options, missing packages, bad folders (no model is converted here)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from mason.core.errors import InputError, MasonError
from mason.export.base import ExportJob, get_exporter


def test_registry_resolves_onnx_and_mlx_exporters() -> None:
    assert get_exporter("onnx").name == "onnx"
    assert get_exporter("mlx").name == "mlx"


def test_importing_the_modules_imports_no_backend() -> None:
    import subprocess

    code = ("import sys, mason.export.onnx, mason.export.mlx, mason.runtime.onnx, mason.runtime.mlx; "
            "print(sorted(m for m in ('torch', 'onnxruntime', 'onnxruntime_genai', 'mlx', 'mlx_lm', 'transformers') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize(("options", "expected"), [({}, "fp32"), ({"onnx_precision": "INT4"}, "int4"),
                                                   ({"onnx_precision": "int8"}, "int8")])
def test_precision_option(options: dict, expected: str) -> None:
    from mason.export.onnx import precision_of

    assert precision_of(options) == expected


def test_fp16_is_refused_with_the_cpu_precisions() -> None:
    from mason.export.onnx import precision_of

    with pytest.raises(MasonError) as err:
        precision_of({"onnx_precision": "fp16"})
    assert "fp32, int8, int4" in err.value.hint


def test_missing_package_names_the_extra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "onnxruntime_genai", None)  # import raises ImportError
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(MasonError) as err:
        get_exporter("onnx").export(ExportJob(model_dir=tmp_path, out_dir=out))
    assert "onnxruntime_genai" in str(err.value)
    assert err.value.hint == 'pip install "mason[onnx]"'
    assert list(out.iterdir()) == []


def test_runtime_missing_package_names_the_extra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from mason.runtime.onnx import OnnxRuntime

    monkeypatch.setitem(sys.modules, "onnxruntime_genai", None)
    with pytest.raises(MasonError) as err:
        OnnxRuntime(tmp_path, format="onnx", base_model=None)
    assert err.value.hint == 'pip install "mason[onnx]"'


def test_runtime_refuses_a_folder_without_genai_config(tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime_genai")
    pytest.importorskip("transformers")
    from mason.runtime.onnx import OnnxRuntime

    (tmp_path / "model.onnx").write_bytes(b"")
    with pytest.raises(InputError, match="genai_config.json"):
        OnnxRuntime(tmp_path, format="onnx", base_model=None)


def test_stop_ids_add_the_templates_end_of_turn() -> None:
    from mason.runtime.onnx import stop_ids

    class Tok:
        eos_token_id = 0
        chat_template = "{{ '<|im_start|>' + m + '<|im_end|>' }}"

        def get_vocab(self) -> dict[str, int]:
            return {"<|endoftext|>": 0, "<|im_start|>": 1, "<|im_end|>": 2, "<|eot_id|>": 3}

    assert stop_ids(Tok(), [5]) == {0, 2, 5}
