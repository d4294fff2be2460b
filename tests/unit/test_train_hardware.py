"""Run-time hardware decisions of training: bf16 autocast, gradient checkpointing, peak memory."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

torch = pytest.importorskip("torch")

from mason.train import hardware  # noqa: E402
from mason.train.config import TrainingConfig  # noqa: E402


def test_explicit_bf16_settings_are_kept():
    assert hardware.use_bf16("true") is True and hardware.use_bf16(True) is True
    assert hardware.use_bf16("false") is False and hardware.use_bf16(False) is False


@pytest.mark.skipif(torch.cuda.is_available(), reason="the CPU decision")
@pytest.mark.parametrize(("speedup", "expected"), [(2.1, True), (1.31, True), (1.0, False), (0.2, False)])
def test_auto_bf16_follows_the_measured_speedup(monkeypatch, speedup, expected):
    monkeypatch.setattr(hardware, "cpu_bf16_speedup", lambda: speedup)
    assert hardware.use_bf16("auto") is expected and hardware.use_bf16(None) is expected


def test_the_measurement_is_a_positive_ratio():
    hardware.cpu_bf16_speedup.cache_clear()
    ratio = hardware.cpu_bf16_speedup()
    assert ratio > 0 and hardware.cpu_bf16_speedup() == ratio  # measured once per process


def _model(params: int, hidden: int = 64, layers: int = 2) -> object:
    weight = torch.nn.Parameter(torch.zeros(params))
    module = torch.nn.Module()
    module.w = weight
    module.config = SimpleNamespace(hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=4,
                                    vocab_size=100)
    return module


def test_activation_estimate_grows_with_batch_and_length():
    cfg = SimpleNamespace(hidden_size=576, num_hidden_layers=30, num_attention_heads=9, vocab_size=49152)
    one = hardware.activation_bytes(cfg, 1, 256, 4)
    assert hardware.activation_bytes(cfg, 8, 256, 4) == 8 * one
    assert hardware.activation_bytes(cfg, 1, 512, 4) > 2 * one  # attention scores grow with the square
    assert hardware.activation_bytes(cfg, 1, 256, 2) < one
    assert hardware.activation_bytes(cfg, 1, 256, 4, scores=False) < one  # SDPA keeps no score matrix


def test_auto_checkpointing_stays_off_for_a_small_model_with_sdpa(monkeypatch):
    """SmolLM2-135M at batch 8 x 1024 tokens under bf16 autocast with SDPA fits in 17 GiB (measured
    runs used a few GiB); counting eager attention's score matrices it would not."""
    import torch

    model = torch.nn.Module()
    model.w = torch.nn.Parameter(torch.zeros(135_000_000 // 1000, 1000), requires_grad=False)
    model.config = SimpleNamespace(hidden_size=576, num_hidden_layers=30, num_attention_heads=9,
                                   vocab_size=49152, _attn_implementation="sdpa")
    monkeypatch.setattr(hardware, "free_memory_bytes", lambda: 17 * 2**30)
    assert not hardware.choose_checkpointing("auto", model, 8, 1024, bf16=True).on
    model.config._attn_implementation = "eager"
    assert hardware.choose_checkpointing("auto", model, 8, 1024, bf16=False).on


def test_auto_checkpointing_turns_on_only_when_memory_is_short(monkeypatch):
    model = _model(1000)
    monkeypatch.setattr(hardware, "free_memory_bytes", lambda: 64 * 2**30)
    roomy = hardware.choose_checkpointing("auto", model, batch=8, length=256)
    assert not roomy.on and "no gradient checkpointing" in roomy.reason and "64.0 GiB free" in roomy.reason
    monkeypatch.setattr(hardware, "free_memory_bytes", lambda: 2**20)
    short = hardware.choose_checkpointing("auto", model, batch=8, length=256)
    assert short.on and "gradient checkpointing on" in short.reason
    assert hardware.choose_checkpointing(False, model, 8, 256).on is False
    assert hardware.choose_checkpointing(True, model, 8, 256).on is True


def test_checkpointing_setting_validates():
    assert TrainingConfig().gradient_checkpointing == "auto"
    assert TrainingConfig(gradient_checkpointing=True).gradient_checkpointing is True
    with pytest.raises(ValueError):
        TrainingConfig(gradient_checkpointing="sometimes")


def test_peak_rss_is_measured():
    before = hardware.peak_rss_mb()
    block = bytearray(64 * 2**20)
    block[::4096] = b"x" * len(block[::4096])
    assert hardware.peak_rss_mb() >= max(before, 60)
