"""The unsloth path: clear errors where it cannot run, and the calls it makes (checked against a
stand-in `unsloth` module: unsloth needs an NVIDIA GPU, which these machines do not have)."""

from __future__ import annotations

import importlib.machinery
import sys
import types
from pathlib import Path

import pytest

from mason.core.errors import MasonError
from mason.models.config import BaseModelConfig
from mason.train.config import TrainingConfig
from mason.train.unsloth_backend import check_unsloth, load_with_unsloth


class FakeTokenizer:
    pad_token = None
    eos_token = "</s>"
    padding_side = "left"


class FakeFast:
    calls: list = []

    @classmethod
    def from_pretrained(cls, **kwargs):
        cls.calls.append(("from_pretrained", kwargs))
        return "model", FakeTokenizer()

    @classmethod
    def get_peft_model(cls, model, **kwargs):
        cls.calls.append(("get_peft_model", kwargs))
        return "peft-model"


@pytest.fixture
def fake_unsloth(monkeypatch):
    module = types.ModuleType("unsloth")
    module.__spec__ = importlib.machinery.ModuleSpec("unsloth", None)
    module.FastLanguageModel = FakeFast
    FakeFast.calls = []
    monkeypatch.setitem(sys.modules, "unsloth", module)
    return FakeFast


def test_not_installed_is_a_clear_error(monkeypatch):
    monkeypatch.setattr("importlib.util.find_spec", lambda name: None)
    with pytest.raises(MasonError, match="needs unsloth, which is not installed") as err:
        check_unsloth("cuda")
    assert "pip install unsloth" in err.value.hint


def test_no_gpu_is_a_clear_error(fake_unsloth):
    with pytest.raises(MasonError, match="needs an NVIDIA GPU; this machine trains on cpu"):
        check_unsloth("cpu")


def test_lora_through_unsloth(fake_unsloth):
    cfg = TrainingConfig(use_unsloth=True, lora_r=8, max_length=512, seed=3)
    model, tok = load_with_unsloth("some/model", BaseModelConfig(name="some/model"), cfg, None)
    assert model == "peft-model" and tok.pad_token == "</s>" and tok.padding_side == "right"
    (_, load), (_, peft) = fake_unsloth.calls
    assert load["model_name"] == "some/model" and load["max_seq_length"] == 512
    assert load["load_in_4bit"] is False and load["full_finetuning"] is False
    assert peft["r"] == 8 and peft["random_state"] == 3
    assert peft["target_modules"] == ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def test_qlora_and_full_flags(fake_unsloth):
    load_with_unsloth("m", BaseModelConfig(name="m"), TrainingConfig(use_unsloth=True, method="qlora"), None)
    assert fake_unsloth.calls[0][1]["load_in_4bit"] is True
    fake_unsloth.calls = []
    model, _ = load_with_unsloth("m", BaseModelConfig(name="m"), TrainingConfig(use_unsloth=True, method="full"),
                                 Path("/prev/merged"))
    assert model == "model" and [c for c, _ in fake_unsloth.calls] == ["from_pretrained"]
    assert fake_unsloth.calls[0][1]["model_name"] == "/prev/merged" and fake_unsloth.calls[0][1]["full_finetuning"]
