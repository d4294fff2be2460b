"""ONNX export of the tiny Llama with onnxruntime-genai's builder, verified against PyTorch, and
the ONNX runtime answering from it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxruntime_genai")
pytest.importorskip("onnx_ir")
pytest.importorskip("transformers")

from mason.core.errors import MasonError
from mason.export.base import ExportJob, ExportVerificationError, get_exporter
from mason.export.verify import TOLERANCES
from mason.runtime import GenerationParams, detect_format, open_runtime

pytestmark = pytest.mark.slow

PROMPTS = [
    [{"role": "user", "content": "What is a keystone?"}],
    [{"role": "system", "content": "Answer briefly."}, {"role": "user", "content": "How thick is a mortar joint?"}],
]


def _export(model_dir: Path, out: Path, precision: str) -> tuple[ExportJob, object]:
    out.mkdir(parents=True)
    job = ExportJob(model_dir=model_dir, out_dir=out, options={"onnx_precision": precision}, verify_prompts=PROMPTS)
    return job, get_exporter("onnx").export(job)


@pytest.fixture(scope="module")
def fp32(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[ExportJob, object]:
    return _export(tiny_model_dir, tmp_path_factory.mktemp("onnx") / "fp32", "fp32")


def test_fp32_export_writes_a_genai_folder(fp32: tuple) -> None:
    job, output = fp32
    assert output.path == job.out_dir
    for name in ("genai_config.json", "model.onnx", "tokenizer.json", "chat_template.jinja"):
        assert name in output.files, output.files
    genai = json.loads((job.out_dir / "genai_config.json").read_text())
    assert genai["model"]["decoder"]["num_hidden_layers"] == 2
    assert output.details["precision"] == "fp32" and output.details["export_seconds"] > 0
    assert detect_format(job.out_dir) == "onnx"


def test_fp32_export_matches_pytorch(fp32: tuple) -> None:
    job, output = fp32
    result = get_exporter("onnx").verify(job, output)
    assert result["passed"] and result["tokenizer_match"]
    assert result["prompts"] == 2 and result["greedy_match"] == 2
    assert result["max_abs_diff"] < 1e-5  # fp32 graph: rounding only


def test_graph_greedy_with_kv_cache_matches_genai(fp32: tuple) -> None:
    from mason.export.onnx import GenaiGreedy, OrtDecoder
    from mason.export.verify import reference_outputs

    job, _ = fp32
    ref = reference_outputs(job.model_dir, PROMPTS[:1], max_new_tokens=8)[0]
    by_hand = OrtDecoder(job.out_dir).greedy(ref.prompt_ids, 8, eos_ids={2})
    assert by_hand == GenaiGreedy(job.out_dir).greedy(ref.prompt_ids, 8) == ref.greedy_ids


def test_corrupted_weight_fails_verification(fp32: tuple, tmp_path: Path) -> None:
    import numpy as np
    import onnx
    from onnx import numpy_helper

    job, output = fp32
    broken = tmp_path / "broken"
    shutil.copytree(job.out_dir, broken, ignore=shutil.ignore_patterns("model.onnx", "model.onnx.data"))
    model = onnx.load(str(job.out_dir / "model.onnx"))  # loads model.onnx.data beside it
    init = next(t for t in model.graph.initializer if "down_proj" in t.name)
    weights = numpy_helper.to_array(init).copy()
    weights[0] += 1.0  # one row of one layer
    init.CopyFrom(numpy_helper.from_array(weights.astype(np.float32), init.name))
    onnx.save(model, str(broken / "model.onnx"), save_as_external_data=True, location="model.onnx.data")
    bad = type(output)(path=broken, files=output.files)
    with pytest.raises(ExportVerificationError) as err:
        get_exporter("onnx").verify(ExportJob(job.model_dir, broken, job.options, verify_prompts=PROMPTS), bad)
    assert "max |logit diff|" in str(err.value) and "tolerance 0.001" in str(err.value)


def test_int4_exports_smaller_and_verifies(tiny_model_dir: Path, tmp_path: Path, fp32: tuple) -> None:
    job, output = _export(tiny_model_dir, tmp_path / "int4", "int4")
    assert output.details["onnx_bytes"] < fp32[1].details["onnx_bytes"] / 2
    result = get_exporter("onnx").verify(job, output)
    assert result["passed"] and result["tolerance"] == TOLERANCES["int4"]
    assert 0 < result["max_abs_diff"] < 3.0  # really quantized, within the int4 tolerance
    runtime = open_runtime(job.out_dir)
    answer = runtime.generate(PROMPTS[0], GenerationParams(max_tokens=6))
    assert answer.prompt_tokens > 0 and answer.output_tokens > 0


def test_unsupported_architecture_is_a_clear_error(tiny_model_dir: Path, tmp_path: Path) -> None:
    model = tmp_path / "model"
    shutil.copytree(tiny_model_dir, model)
    config = json.loads((model / "config.json").read_text())
    config["architectures"] = ["NoSuchForCausalLM"]
    (model / "config.json").write_text(json.dumps(config))
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(MasonError) as err:
        get_exporter("onnx").export(ExportJob(model_dir=model, out_dir=out))
    assert "not currently supported" in str(err.value) and "gguf" in err.value.hint
    assert list(out.iterdir()) == []  # nothing half-written


def test_runtime_streams_the_pytorch_greedy_answer(fp32: tuple) -> None:
    from transformers import AutoTokenizer

    from mason.export.verify import reference_outputs

    job, _ = fp32
    runtime = open_runtime(job.out_dir, n_threads=1)
    assert runtime.describe()["backend"] == "onnxruntime"
    pieces = list(runtime.stream(PROMPTS[1], GenerationParams(max_tokens=10)))
    assert pieces and all(isinstance(p, str) for p in pieces)
    ref = reference_outputs(job.model_dir, PROMPTS[1:], max_new_tokens=10)[0]
    assert runtime.last_usage == (len(ref.prompt_ids), len([t for t in ref.greedy_ids if t != 2]))
    tok = AutoTokenizer.from_pretrained(job.model_dir)
    assert "".join(pieces) == tok.decode([t for t in ref.greedy_ids if t != 2], skip_special_tokens=True)


def test_runtime_sampling_is_seeded(fp32: tuple) -> None:
    runtime = open_runtime(fp32[0].out_dir)
    params = GenerationParams(max_tokens=12, temperature=1.0, top_p=0.95, repetition_penalty=1.2, seed=7)
    first = runtime.generate(PROMPTS[0], params)
    again = runtime.generate(PROMPTS[0], params)
    assert first.text == again.text and first.output_tokens == again.output_tokens > 0
