"""The real-size architecture spec (``QWEN2_VL_2B``) the GPU check trains for one step."""

from __future__ import annotations

import torch

from agents.vlm import prompt
from agents.vlm.model import QWEN2_VL_2B, TinySpec, build_tokenizer, model_config
from tir_env.tools.base import tool_names


def _parameters(spec: TinySpec) -> int:
    from transformers import Qwen2VLForConditionalGeneration

    tools = tuple(tool_names(kinds=("classical",)))
    tok = build_tokenizer(prompt.corpus(tools), 600, prompt.tool_words(tools))
    with torch.device("meta"):  # shapes only: no memory, no time
        model = Qwen2VLForConditionalGeneration(model_config(spec, tok))
    return sum(p.numel() for p in model.parameters())


def test_qwen2_vl_2b_spec_has_the_published_size():
    # Qwen2-VL-2B-Instruct: 2.21 billion parameters (its model card, tied embeddings)
    assert 2.15e9 < _parameters(QWEN2_VL_2B) < 2.27e9


def test_tiny_spec_stays_tiny():
    assert _parameters(TinySpec()) < 2e6
