"""MLX export of the tiny Llama with mlx-lm (CPU build on Linux), verified against PyTorch, and the
MLX runtime answering from it. Option checks and missing-package errors run without MLX."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest

from mason.core.errors import MasonError
from mason.export.base import ExportJob, ExportVerificationError, get_exporter

PROMPTS = [
    [{"role": "user", "content": "What is a keystone?"}],
    [{"role": "system", "content": "Answer briefly."}, {"role": "user", "content": "How thick is a mortar joint?"}],
]


def _needs_mlx() -> None:
    pytest.importorskip("mlx.core")
    pytest.importorskip("mlx_lm")
    pytest.importorskip("transformers")


@pytest.mark.parametrize(("options", "bits", "key"), [({}, None, "fp32"), ({"mlx_quantize": 4}, 4, "int4"),
                                                      ({"mlx_quantize": "8bit"}, 8, "int8"),
                                                      ({"mlx_dtype": "bfloat16"}, None, "bf16")])
def test_settings(options: dict, bits: int | None, key: str) -> None:
    from mason.export.mlx import settings

    cfg = settings(options)
    assert (cfg["bits"], cfg["tolerance_key"]) == (bits, key)


def test_bad_bits_are_refused() -> None:
    from mason.export.mlx import settings

    with pytest.raises(MasonError, match="mlx_quantize"):
        settings({"mlx_quantize": 3})


def test_missing_mlx_names_the_extra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from mason.runtime.mlx import MlxRuntime

    monkeypatch.setitem(sys.modules, "mlx_lm", None)  # import raises ImportError
    with pytest.raises(MasonError) as err:
        get_exporter("mlx").export(ExportJob(model_dir=tmp_path, out_dir=tmp_path))
    assert err.value.hint == 'pip install "mason[mlx]"'
    with pytest.raises(MasonError) as err:
        MlxRuntime(tmp_path, format="mlx", base_model=None)
    assert err.value.hint == 'pip install "mason[mlx]"'


def _export(model_dir: Path, out: Path, **options: object) -> tuple[ExportJob, object]:
    out.mkdir(parents=True)
    job = ExportJob(model_dir=model_dir, out_dir=out, options=dict(options), verify_prompts=PROMPTS)
    return job, get_exporter("mlx").export(job)


@pytest.fixture(scope="module")
def full(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[ExportJob, object]:
    _needs_mlx()
    return _export(tiny_model_dir, tmp_path_factory.mktemp("mlx") / "full")


@pytest.mark.slow
def test_export_writes_an_mlx_folder_with_marker(full: tuple) -> None:
    from mason.runtime import detect_format

    job, output = full
    assert {"config.json", "model.safetensors", "tokenizer.json", "mlx_format"} <= set(output.files)
    assert not (job.out_dir / ".mlx-convert").exists()
    marker = json.loads((job.out_dir / "mlx_format").read_text())
    assert marker["format"] == "mlx" and marker["quantization"] is None and marker["dtype"] == "float32"
    assert detect_format(job.out_dir) == "mlx"


@pytest.mark.slow
def test_full_precision_matches_pytorch(full: tuple) -> None:
    job, output = full
    result = get_exporter("mlx").verify(job, output)
    assert result["passed"] and result["tokenizer_match"] and result["runtime"] == "mlx"
    assert result["greedy_match"] == 2 and result["max_abs_diff"] < 1e-5


@pytest.mark.slow
def test_4bit_is_smaller_and_within_tolerance(tiny_model_dir: Path, tmp_path: Path, full: tuple) -> None:
    job, output = _export(tiny_model_dir, tmp_path / "q4", mlx_quantize=4)
    assert json.loads((job.out_dir / "config.json").read_text())["quantization"]["bits"] == 4
    assert output.details["weights_bytes"] < full[1].details["weights_bytes"] / 3
    result = get_exporter("mlx").verify(job, output)
    assert result["passed"] and result["dtype"] == "int4" and 0 < result["max_abs_diff"] < 3.0


@pytest.mark.slow
def test_export_from_a_different_model_fails_verification(tiny_model_dir: Path, tmp_path: Path) -> None:
    from safetensors.numpy import load_file, save_file

    changed = tmp_path / "changed"
    shutil.copytree(tiny_model_dir, changed)
    weights = load_file(str(changed / "model.safetensors"))
    name = next(k for k in weights if "layers.0.mlp.down_proj" in k)
    weights[name] = weights[name] * 3.0
    save_file(weights, str(changed / "model.safetensors"), metadata={"format": "pt"})
    job, output = _export(changed, tmp_path / "out")
    reference = ExportJob(model_dir=tiny_model_dir, out_dir=job.out_dir, verify_prompts=PROMPTS)
    with pytest.raises(ExportVerificationError) as err:
        get_exporter("mlx").verify(reference, output)
    assert "max |logit diff|" in str(err.value) and "tolerance 0.001" in str(err.value)


@pytest.mark.slow
def test_unsupported_model_type_is_a_clear_error(tiny_model_dir: Path, tmp_path: Path) -> None:
    _needs_mlx()
    model = tmp_path / "model"
    shutil.copytree(tiny_model_dir, model)
    config = json.loads((model / "config.json").read_text())
    config["model_type"] = "no_such_model"
    (model / "config.json").write_text(json.dumps(config))
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(MasonError, match="MLX export of .* failed"):
        get_exporter("mlx").export(ExportJob(model_dir=model, out_dir=out))
    assert list(out.iterdir()) == []


@pytest.mark.slow
def test_runtime_streams_the_pytorch_greedy_answer(full: tuple) -> None:
    from transformers import AutoTokenizer

    from mason.export.verify import reference_outputs
    from mason.runtime import GenerationParams, open_runtime

    job, _ = full
    runtime = open_runtime(job.out_dir)
    assert runtime.describe()["backend"] == "mlx"
    pieces = list(runtime.stream(PROMPTS[1], GenerationParams(max_tokens=10)))
    assert pieces and all(isinstance(p, str) for p in pieces)
    ref = reference_outputs(job.model_dir, PROMPTS[1:], max_new_tokens=10)[0]
    answer = [t for t in ref.greedy_ids if t != 2]
    assert runtime.last_usage == (len(ref.prompt_ids), len(answer))
    tok = AutoTokenizer.from_pretrained(job.model_dir)
    assert "".join(pieces) == tok.decode(answer, skip_special_tokens=True)
    params = GenerationParams(max_tokens=12, temperature=1.0, top_p=0.9, repetition_penalty=1.2, seed=3)
    first, again = runtime.generate(PROMPTS[0], params), runtime.generate(PROMPTS[0], params)
    assert first.text == again.text and first.output_tokens == again.output_tokens > 0


@pytest.mark.slow
def test_transformers5_rope_theta_reaches_mlx(tiny_model_dir: Path, tmp_path: Path) -> None:
    """transformers 5 keeps rope_theta only under rope_parameters; mlx-lm reads the top-level key
    (default 10000). Without the export's fix the logits differ beyond the fp32 tolerance."""
    model = tmp_path / "model"
    shutil.copytree(tiny_model_dir, model)
    config = json.loads((model / "config.json").read_text())
    config["rope_parameters"]["rope_theta"] = 500000.0
    (model / "config.json").write_text(json.dumps(config))
    prompts = [[{"role": "user", "content": "What is a keystone? Tell me about arches, bricks and walls."}]]
    job, output = _export(model, tmp_path / "out")
    job.verify_prompts = prompts
    assert output.details["config_fixes"] == ["rope_theta=500000.0"]
    assert get_exporter("mlx").verify(job, output)["max_abs_diff"] < 1e-5
    exported = json.loads((job.out_dir / "config.json").read_text())
    del exported["rope_theta"]  # undo the fix: mlx-lm falls back to theta 10000
    (job.out_dir / "config.json").write_text(json.dumps(exported))
    with pytest.raises(ExportVerificationError):
        get_exporter("mlx").verify(job, output)
