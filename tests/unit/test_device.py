"""Device settings (`training.device`, `evaluation.device`, `mason chat --device`) and the 4-bit
compute dtype: spelling, what this machine has, the scope training runs in."""

from __future__ import annotations

from pathlib import Path

import pytest

from mason.core.errors import InputError
from mason.evaluate.config import EvaluationConfig
from mason.models.device import available_devices, check_device_name, device_kind, use_device
from mason.train.config import TrainingConfig


@pytest.mark.parametrize("name", ["auto", "cpu", "cuda", "cuda:0", "cuda:12", "mps", " CUDA:1 "])
def test_known_device_names(name: str) -> None:
    assert check_device_name(name) == name.strip().lower()


@pytest.mark.parametrize("name", ["gpu", "cuda:", "cuda:x", "cuda0", "tpu", "", "cpu:0"])
def test_unknown_device_names(name: str) -> None:
    with pytest.raises(ValueError, match="auto, cpu, cuda, cuda:N"):
        check_device_name(name)


def test_configs_check_the_device() -> None:
    assert TrainingConfig().device == "auto" and EvaluationConfig().device == "auto"
    assert TrainingConfig(device="CUDA:1").device == "cuda:1"
    for section in (TrainingConfig, EvaluationConfig):
        with pytest.raises(ValueError, match="unknown device 'gpu'"):
            section(device="gpu")


def test_auto_and_cpu_are_always_there() -> None:
    have = available_devices()
    assert have[-1] == "cpu"
    assert device_kind() == device_kind("auto") == have[0].split(":")[0]
    assert device_kind("cpu") == "cpu"


def test_a_missing_device_names_the_available_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    with pytest.raises(InputError) as e:
        device_kind("cuda")
    assert "device 'cuda' is not available" in e.value.message and "available: cpu" in e.value.message
    assert "no CUDA GPU" in e.value.message and "auto" in e.value.hint
    with pytest.raises(InputError, match="Metal"):
        device_kind("mps")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert device_kind("cuda:1") == "cuda:1"
    with pytest.raises(InputError) as e:
        device_kind("cuda:2")
    assert "2 CUDA GPU(s)" in e.value.message and "available: cuda, cuda:0, cuda:1, cpu" in e.value.message
    with pytest.raises(InputError, match="unknown device"):
        device_kind("gpu")


def test_use_device_scopes_the_automatic_choice() -> None:
    auto = device_kind()
    with use_device("cpu") as device:
        assert device == "cpu" and device_kind() == "cpu" and device_kind("auto") == "cpu"
        with use_device(None):
            assert device_kind() == auto  # `auto` inside: the automatic choice again
    assert device_kind() == auto


def test_training_device_reaches_the_trainer_arguments(tmp_path: Path) -> None:
    from mason.train.hardware import bf16_native, pin_device, training_device
    from mason.train.sft import trainer_kwargs

    cfg = TrainingConfig(device="cpu")
    with training_device(cfg.device) as device:
        assert device == "cpu"
        assert trainer_kwargs(cfg, tmp_path, has_eval=False, n_rows=4)["use_cpu"] is True
        bf16_native()  # measured on the CPU, whatever GPU the machine has
        args = object()
        assert pin_device(args) is args  # only a cuda:N is pinned


def test_training_device_is_ignored_under_torchrun(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    from mason.core import distributed
    from mason.train.hardware import training_device

    monkeypatch.setattr(distributed, "world_size", lambda: 2)
    with training_device("cuda:3") as device:
        assert device == "auto"
    assert "ignored under torchrun" in capsys.readouterr().err


def test_4bit_compute_dtype(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    from mason.train.modeling import compute_dtype

    assert TrainingConfig().bnb_4bit_compute_dtype == "auto"
    assert TrainingConfig(bnb_4bit_compute_dtype="float16").bnb_4bit_compute_dtype == "float16"
    with pytest.raises(ValueError):
        TrainingConfig(bnb_4bit_compute_dtype="int8")
    assert compute_dtype("float16") is torch.float16 and compute_dtype("float32") is torch.float32
    assert compute_dtype("bfloat16") is torch.bfloat16
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    assert compute_dtype("auto") is torch.float16  # a GPU without bf16 (T4, V100)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert compute_dtype("auto") is torch.bfloat16


def test_chat_device_option(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from mason.runtime import base as runtime_base
    from tests.unit.test_chat_cli import EchoRuntime, app  # a scripted runtime and the command

    folder = tmp_path / "merged"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    monkeypatch.setitem(runtime_base.FORMATS, "merged", "tests.unit.test_chat_cli:EchoRuntime")
    EchoRuntime.calls, EchoRuntime.opened = [], []
    r = CliRunner().invoke(app, ["chat", str(folder), "-p", "hi", "--device", "CPU"])
    assert r.exit_code == 0, r.output
    assert EchoRuntime.opened[-1]["device"] == "cpu"
    r = CliRunner().invoke(app, ["chat", str(folder), "-p", "hi", "--device", "gpu"])
    assert r.exit_code == 2 and "unknown device 'gpu'" in r.stderr


def test_evaluation_opens_pytorch_models_on_its_device(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from mason.evaluate import stage
    from mason.runtime import base as runtime_base

    opened: list[tuple] = []
    monkeypatch.setattr(runtime_base, "open_runtime", lambda path, **kw: opened.append((path, kw)))
    cfg = EvaluationConfig(device="cpu", batch_size=2)
    stage._open(stage.Target("tuned", tmp_path, "merged"), cfg)
    stage._open(stage.Target("gguf", tmp_path / "m.gguf", "gguf"), cfg)
    assert opened[0][1]["device"] == "cpu" and opened[0][1]["batch_size"] == 2
    assert "device" not in opened[1][1]  # llama.cpp picks its own hardware


def test_pin_device_points_the_trainer_at_one_gpu(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No GPU here: what `pin_device` changes on real `TrainingArguments` (transformers would take
    cuda:0 and DataParallel over every GPU)."""
    import torch
    from transformers import TrainingArguments

    from mason.train import hardware

    args = TrainingArguments(output_dir=str(tmp_path), use_cpu=True, report_to="none")
    current: list[str] = []
    monkeypatch.setattr(torch.cuda, "set_device", lambda d: current.append(str(d)))
    monkeypatch.setattr("mason.models.device.device_kind", lambda device=None: "cuda:1")
    assert hardware.pin_device(args) is args
    assert args.device == torch.device("cuda:1") and args.n_gpu == 1 and current == ["cuda:1"]
