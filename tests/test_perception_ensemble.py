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


def _typed_member(folder: Path, arch: dict, seed: int, limit: float) -> Path:
    torch.manual_seed(seed)
    path = folder / f"t{seed}" / "perception.safetensors"
    path.parent.mkdir(parents=True)
    from tir_env.degradations.protocols import AGENTICIR_TYPES

    record = {
        "architecture": arch,
        "types": list(AGENTICIR_TYPES),
        "outputs": {"presence": [0, 8], "severity": [8, 16], "quality": [16, 18]},
        "thresholds": dict.fromkeys(AGENTICIR_TYPES, limit),
    }
    save_weights(build(arch), path, record)
    return path


def test_a_picked_type_is_read_by_its_member_alone(tmp_path: Path) -> None:
    from tir_env.degradations.protocols import AGENTICIR_TYPES

    members = [_typed_member(tmp_path, a, i, 0.1 + 0.5 * i) for i, a in enumerate(ARCHS)]
    record = combine(members, tmp_path / "hyb", pick={"dark": 0, "haze": 0}, rest=1)
    assert record["thresholds"]["dark"] == 0.1 and record["thresholds"]["noise"] == 0.6
    net = load_into(build(record["architecture"]), tmp_path / "hyb" / "perception.safetensors")
    singles = [load_into(build(a), m) for a, m in zip(ARCHS, members, strict=True)]
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        out, first, second = net(x), singles[0](x), singles[1](x)
    for i, name in enumerate(AGENTICIR_TYPES):
        source = first if name in ("dark", "haze") else second
        for column in (i, 8 + i):  # presence and severity
            assert torch.allclose(out[:, column], source[:, column], atol=1e-6), name
    assert torch.allclose(out[:, 16:], second[:, 16:], atol=1e-6)


@pytest.mark.parametrize(
    ("pick", "rest", "match"),
    [({"darkness": 0}, None, "not a perception type"), ({"dark": 2}, None, "member 2"),
     ({}, -1, "member -1")],
)  # fmt: skip
def test_a_pick_that_names_no_type_or_member_is_refused(
    tmp_path: Path, pick: dict[str, int], rest: int | None, match: str
) -> None:
    members = [_typed_member(tmp_path, a, i, 0.5) for i, a in enumerate(ARCHS)]
    with pytest.raises(ValueError, match=match):
        combine(members, tmp_path / "bad", pick=pick, rest=rest)
    assert not (tmp_path / "bad" / "perception.safetensors").exists()


def test_weights_of_the_wrong_shape_or_all_zero_are_refused() -> None:
    members = [PerceptionNetV2(18, 4, 8), PerceptionNetV2(18, 6, 8)]
    with pytest.raises(ValueError, match="one row"):
        PerceptionEnsemble(members, [[1.0] * 18])
    with pytest.raises(ValueError, match="above 0"):
        PerceptionEnsemble(members, [[0.0] * 18, [0.0] + [1.0] * 17])


def test_a_member_without_a_threshold_for_its_type_is_a_named_error(tmp_path: Path) -> None:
    from tir_env.errors import CheckpointError

    members = [_typed_member(tmp_path, a, i, 0.5) for i, a in enumerate(ARCHS)]
    record = json.loads(members[0].with_suffix(".json").read_text())
    del record["thresholds"]["dark"]
    members[0].with_suffix(".json").write_text(json.dumps(record))
    with pytest.raises(CheckpointError, match="no threshold for dark"):
        combine(members, tmp_path / "bad", pick={"dark": 0}, rest=1)


def test_non_finite_weights_or_the_wrong_width_are_refused() -> None:
    members = [PerceptionNetV2(18, 4, 8).eval(), PerceptionNetV2(18, 6, 8).eval()]
    with pytest.raises(ValueError, match="finite"):
        PerceptionEnsemble(members, [[float("nan")] * 18, [1.0] * 18])
    narrow = PerceptionEnsemble(members, [[1.0] * 5, [1.0] * 5])
    with pytest.raises(ValueError, match="for 5 outputs"), torch.no_grad():
        narrow(torch.rand(1, 3, 32, 32))
