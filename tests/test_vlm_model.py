"""Models of the VLM agent: the tiny Qwen2-VL saved and reloaded like a real checkpoint."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from agents.vlm import prompt
from agents.vlm.errors import ModelLoadError, ModelNotFoundError
from agents.vlm.model import LoraSpec, TinySpec, build_tiny_for_tools, load_vlm
from agents.vlm.policy import Dialogue
from tir_env.errors import TIRError
from tir_env.tools.base import tool_names

TOOLS = tuple(tool_names(kinds=("classical",)))
SPEC = TinySpec(vocab_size=600, image_size=56)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return build_tiny_for_tools(tmp_path_factory.mktemp("vlm") / "tiny", TOOLS, SPEC)


def _logits(vlm):
    image = np.random.default_rng(0).integers(0, 255, (40, 40, 3), dtype=np.uint8)
    d = Dialogue(vlm, prompt.system_prompt(TOOLS, "brief"), image, "Input image.")
    with torch.no_grad():
        return vlm.model(**d.tokens.inputs(vlm.device)).logits


def test_tiny_model_loads_through_the_auto_classes(tiny):
    for name in ("config.json", "model.safetensors", "tokenizer.json", "tir_vlm.json"):
        assert (tiny / name).is_file()
    vlm = load_vlm(tiny)
    assert type(vlm.base_model).__name__ == "Qwen2VLForConditionalGeneration"
    assert vlm.image_size == 56 and not vlm.has_adapter
    assert vlm.suppress_ids and vlm.eos_ids and vlm.token_id("<tool_call>") is not None
    assert torch.equal(_logits(vlm), _logits(load_vlm(tiny)))


def test_adapter_save_and_load(tiny, tmp_path):
    vlm = load_vlm(tiny, lora=LoraSpec(r=4, alpha=8), trainable=True)
    assert vlm.has_adapter and vlm.trainable_parameters()
    torch.manual_seed(0)
    with torch.no_grad():
        for p in vlm.trainable_parameters():
            p.add_(0.05 * torch.randn_like(p))
    before = _logits(vlm)
    vlm.save_adapter(tmp_path / "adapter")
    again = load_vlm(tiny, tmp_path / "adapter")
    assert torch.allclose(before, _logits(again), atol=1e-5)
    merged = load_vlm(tiny, merge=[tmp_path / "adapter"])
    assert not merged.has_adapter
    assert torch.allclose(before, _logits(merged), atol=1e-4)
    assert not torch.allclose(before, _logits(load_vlm(tiny)), atol=1e-4)


def test_missing_and_corrupt_folders_are_named_errors(tiny, tmp_path):
    with pytest.raises(ModelNotFoundError, match="not found"):
        load_vlm(tmp_path / "nowhere")
    broken = tmp_path / "broken"
    shutil.copytree(tiny, broken)
    (broken / "config.json").write_text("{not json")
    with pytest.raises(ModelLoadError, match="corrupt"):
        load_vlm(broken)
    (broken / "config.json").unlink()
    with pytest.raises(ModelNotFoundError, match="config.json"):
        load_vlm(broken)
    shutil.copy(tiny / "config.json", broken / "config.json")
    (broken / "model.safetensors").write_bytes(b"garbage")
    with pytest.raises(ModelLoadError):
        load_vlm(broken)
    (broken / "model.safetensors").unlink()
    with pytest.raises(ModelNotFoundError, match="weights"):
        load_vlm(broken)
    with pytest.raises(ModelNotFoundError, match="adapter_config.json"):
        load_vlm(tiny, tmp_path / "no-adapter")
    bad_meta = tmp_path / "meta"
    shutil.copytree(tiny, bad_meta)
    (bad_meta / "tir_vlm.json").write_text("[")
    with pytest.raises(TIRError):
        load_vlm(bad_meta)


def test_meta_records_the_tiny_spec(tiny):
    meta = json.loads((tiny / "tir_vlm.json").read_text())
    assert meta["spec"]["vocab_size"] == SPEC.vocab_size and meta["prompt_detail"] == "brief"
    assert "lm_head" in meta["lora_targets"]
