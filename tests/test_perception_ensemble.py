"""Perception networks combined: the ensemble's outputs and its weights file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from benchmarks.perception_ensemble import combine
from tir_env.perception import build
from tir_env.tools.learned.nets import PerceptionEnsemble, PerceptionNetV2
from tir_env.tools.learned.weights import load_into, save_weights

ARCHS = [
    {"class": "PerceptionNetV2", "classes": 18, "width": 4, "hidden": 8},
    {"class": "PerceptionNetV2", "classes": 18, "width": 6, "hidden": 8},
]


def _member(folder: Path, arch: dict, seed: int) -> Path:
    torch.manual_seed(seed)
    net = build(arch)
    path = folder / f"m{seed}" / "perception.safetensors"
    path.parent.mkdir(parents=True)
    save_weights(net, path, {"architecture": arch, "thresholds": {"noise": 0.5}})
    return path


def test_the_ensemble_outputs_its_members_mean() -> None:
    torch.manual_seed(0)
    members = [PerceptionNetV2(18, 4, 8).eval(), PerceptionNetV2(18, 6, 8).eval()]
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        expected = (members[0](x) + members[1](x)) / 2
        assert torch.allclose(PerceptionEnsemble(members)(x), expected, atol=1e-6)


def test_an_empty_ensemble_is_refused() -> None:
    with pytest.raises(ValueError, match="at least one"):
        PerceptionEnsemble([])


def test_combine_writes_weights_the_library_loads_and_never_overwrites(tmp_path: Path) -> None:
    members = [_member(tmp_path, arch, i) for i, arch in enumerate(ARCHS)]
    record = combine(members, tmp_path / "ens")
    saved = json.loads((tmp_path / "ens" / "perception.json").read_text())
    assert saved["architecture"] == record["architecture"]
    assert saved["architecture"]["members"] == ARCHS
    net = load_into(build(saved["architecture"]), tmp_path / "ens" / "perception.safetensors")
    x = torch.rand(1, 3, 32, 32)
    singles = [load_into(build(a), m) for a, m in zip(ARCHS, members, strict=True)]
    with torch.no_grad():
        assert torch.allclose(net(x), (singles[0](x) + singles[1](x)) / 2, atol=1e-6)
    with pytest.raises(FileExistsError, match="exists"):
        combine(members, tmp_path / "ens")
