"""Learned tools: registration, shipped weights and records, loading errors, training recipe.

The registry-wide contract (shape, dtype, range, finite, batch == loop, deterministic) is
checked for every learned tool by ``tests/test_tools.py``, and that each improves its own
degradation by ``tests/test_tool_effect.py``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from tir_env.errors import WeightsNotFoundError
from tir_env.tools import TOOLS, make_tool, tool_info, tool_names
from tir_env.tools.learned import SPECS, TOOL_CLASSES, CheckpointError, LearnedTool
from tir_env.tools.learned.nets import PerceptionNet, RestoreNet, SRNet, count_parameters
from tir_env.tools.learned.weights import SHIPPED_DIR, WEIGHTS_ENV, read_record
from tir_env.types import TASKS

NAMES = [spec.name for spec in SPECS]
#: Fields every shipped record must have (docs/tools.md and the issue rely on them).
RECORD_FIELDS = {
    "name",
    "task",
    "parameters",
    "command",
    "seed",
    "train_split",
    "val_split",
    "test_split",
    "recipe",
    "train_cpu_seconds",
    "cpu_ms_per_128px",
}


def test_one_learned_tool_per_task_plus_all_in_one() -> None:
    learned = tool_names(kinds=("learned",))
    assert set(NAMES) <= set(learned)
    for task in TASKS:
        assert f"learned_{task}" in learned
    assert tool_info("learned_all_in_one").task == "all_in_one"
    assert tool_info("learned_super_resolution").scale == 4


@pytest.mark.parametrize("name", NAMES)
def test_metadata_without_loading_weights(name: str) -> None:
    info = tool_info(name)
    assert info.kind == "learned" and info.description
    assert TOOLS.get(name) is TOOL_CLASSES[name]
    assert TOOL_CLASSES[name]()._net is None  # nothing loaded by building it


@pytest.mark.parametrize("name", NAMES)
def test_shipped_weights_and_record(name: str) -> None:
    path = SHIPPED_DIR / f"{name}.safetensors"
    assert path.is_file(), f"missing {path}: run `tir train-tools --only {name}`"
    assert path.stat().st_size < 1_000_000
    record = json.loads(path.with_suffix(".json").read_text())
    assert set(record) >= RECORD_FIELDS, RECORD_FIELDS - set(record)
    assert record["name"] == name and record["task"] == tool_info(name).task
    assert "train_tools" in record["command"]
    assert set(record["train_split"]).isdisjoint(record["test_split"])
    assert record["parameters"] == count_parameters(TOOL_CLASSES[name].spec.build())
    if record["task"] in TASKS:
        assert {"test_psnr", "test_ssim", "best_classical", "best_classical_psnr"} <= set(record)


def test_all_weights_are_small() -> None:
    total = sum(p.stat().st_size for p in SHIPPED_DIR.glob("*.safetensors"))
    # three perception-sized networks are 2 MB of it: perception v2 (0.7 MB), tirqa (the
    # release-2 network, 0.6 MB) and perception_r1 (the vlm's, 0.6 MB); tirqa's trees 1.5 MB
    assert total < 7_000_000


# ---------------------------------------------------------------- loading errors


def test_missing_weights_name_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(WEIGHTS_ENV, str(tmp_path))
    tool = TOOLS.get("learned_denoising")()
    assert "learned_denoising.safetensors" in str(tool.availability())
    with pytest.raises(WeightsNotFoundError, match=r"learned_denoising\.safetensors"):
        tool(torch.rand(1, 3, 8, 8))


def test_corrupt_weights_name_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(WEIGHTS_ENV, str(tmp_path))
    (tmp_path / "learned_deraining.safetensors").write_bytes(b"\x00" * 100)
    with pytest.raises(CheckpointError, match=r"learned_deraining\.safetensors"):
        TOOLS.get("learned_deraining")()(torch.rand(1, 3, 8, 8))


def test_wrong_network_names_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tir_env.tools.learned.weights import save_weights

    monkeypatch.setenv(WEIGHTS_ENV, str(tmp_path))
    save_weights(RestoreNet(channels=8), tmp_path / "learned_dehazing.safetensors", {})
    with pytest.raises(CheckpointError, match=r"learned_dehazing\.safetensors.*does not fit"):
        TOOLS.get("learned_dehazing")()(torch.rand(1, 3, 8, 8))


def test_errors_are_reported_by_the_pool(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tir_env.tools.pool import SyncToolPool
    from tir_env.types import ToolCall

    monkeypatch.setenv(WEIGHTS_ENV, str(tmp_path))
    make_tool.cache_clear()
    try:
        result = SyncToolPool().run(
            torch.rand(1, 3, 8, 8), ToolCall("learned_jpeg_artifact_removal")
        )
    finally:
        make_tool.cache_clear()
    assert not result.ok and "learned_jpeg_artifact_removal.safetensors" in str(result.error)


# ---------------------------------------------------------------- networks


@pytest.mark.parametrize("prior", [False, True])
def test_untrained_restorer_returns_its_base(prior: bool) -> None:
    net = RestoreNet(channels=8, blocks=1, with_prior=prior).eval()
    x, p = torch.rand(2, 3, 7, 9), torch.rand(2, 3, 7, 9)
    out = net(x, p if prior else None)
    torch.testing.assert_close(out, p if prior else x)


def test_untrained_sr_is_bicubic() -> None:
    x = torch.rand(1, 3, 5, 6)
    bicubic = torch.nn.functional.interpolate(x, scale_factor=4, mode="bicubic")
    torch.testing.assert_close(SRNet(channels=8, blocks=1)(x), bicubic)


def test_networks_are_small() -> None:
    for spec in SPECS:
        assert count_parameters(spec.build()) < 120_000, spec.name
    assert count_parameters(PerceptionNet()) < 160_000


def test_learned_tool_records_are_readable() -> None:
    assert read_record("learned_denoising")["task"] == "denoising"
    assert read_record("no_such_network") == {}


# ---------------------------------------------------------------- training recipe


@pytest.mark.parametrize("name", ["learned_jpeg_artifact_removal", "learned_super_resolution"])
def test_training_is_seeded(name: str, tmp_path: Path) -> None:
    from benchmarks.train_tools import main

    args = ["--only", name, "--steps-scale", "0.004", "--pool-scale", "0.02", "--no-test"]
    args += ["--photos", "bundled"]  # tests use the bundled photos only
    a = main([*args, "--out", str(tmp_path / "a")])[name]
    b = main([*args, "--out", str(tmp_path / "b")])[name]
    bytes_a = (tmp_path / "a" / f"{name}.safetensors").read_bytes()
    assert bytes_a == (tmp_path / "b" / f"{name}.safetensors").read_bytes()
    assert a["val_curve"] == b["val_curve"] and a["recipe"]["steps"] >= 1
    import os

    assert os.environ.get(WEIGHTS_ENV) is None  # main restores the weights folder


# ---------------------------------------------------------------- devices


@pytest.mark.gpu
@pytest.mark.parametrize("name", NAMES)
def test_runs_on_cuda(name: str, test_batches: list[torch.Tensor]) -> None:
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    batch = torch.cat(test_batches[:2])
    cpu = TOOLS.get(name)()(batch)
    tool: LearnedTool = TOOLS.get(name)().to("cuda")  # type: ignore[assignment]
    out = tool(batch.cuda())
    assert out.is_cuda and out.shape == cpu.shape
    torch.testing.assert_close(out.cpu(), cpu, atol=2e-3, rtol=0)


def test_tool_table_learned_sections(tmp_path: Path) -> None:
    from benchmarks.tool_table import main

    out = tmp_path / "tools.md"
    main(["--kinds", "classical", "learned", "--size", "32", "--seeds", "1", "--out", str(out)])
    text = out.read_text()
    for heading in ("## Learned tools against", "## The all-in-one network", "## Perception"):
        assert heading in text
    assert "`learned_denoising`" in text and "`dct_denoise`" in text
    assert "| dark+noise |" in text and "| low_resolution |" in text
    assert "TIR_TOOLS_TOML" in text


# ---------------------------------------------------------------- keep share


def test_keep_share_examples_keep_their_input() -> None:
    from dataclasses import replace

    import numpy as np

    from benchmarks import train_tools as tt

    recipe = replace(tt.RECIPES["learned_dehazing"], keep_share=0.999)
    assert () in tt.keep_combos(recipe)
    assert all("haze" not in c and "low_resolution" not in c for c in tt.keep_combos(recipe))
    old = tt._photos
    tt._photos = "bundled"
    try:
        pairs = tt.pair_set("train", 3, recipe, np.random.default_rng(0), 1, None)
        plain = tt.pair_set(
            "train", 3, tt.RECIPES["learned_dehazing"], np.random.default_rng(0), 1, None
        )
    finally:
        tt._photos = old
    assert all(torch.equal(x, y) for x, y in zip(pairs.inputs, pairs.targets, strict=True))
    # without a share every example is degraded: the target is the clean crop
    assert not any(torch.equal(x, y) for x, y in zip(plain.inputs, plain.targets, strict=True))


@pytest.mark.parametrize("share", ["1", "-0.1", "nan"])
def test_keep_share_outside_0_1_is_refused(share: str) -> None:
    from benchmarks.train_tools import parse_args

    with pytest.raises(SystemExit):
        parse_args(["--keep-share", share])


def test_a_keep_share_leaves_super_resolution_examples_as_they_are() -> None:
    from dataclasses import replace

    import numpy as np

    from benchmarks import train_tools as tt

    recipe = replace(tt.RECIPES["learned_super_resolution"], keep_share=0.9)
    old = tt._photos
    tt._photos = "bundled"
    try:
        pairs = tt.pair_set("train", 3, recipe, np.random.default_rng(0), 4, None)
    finally:
        tt._photos = old
    assert all(
        y.shape[-1] == 4 * x.shape[-1] for x, y in zip(pairs.inputs, pairs.targets, strict=True)
    )


def test_training_inputs_are_rounded_to_8_bits_when_asked() -> None:
    """train_tools --round-inputs: the network sees what the env gives it, an 8-bit input."""
    import numpy as np

    from benchmarks.train_tools import make_pair
    from tir_env.images import u8_to_batch

    clean = u8_to_batch(np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8))
    plain, _ = make_pair(clean, ("defocus_blur",), np.random.default_rng(1), 1)
    rounded, target = make_pair(clean, ("defocus_blur",), np.random.default_rng(1), 1, True)
    levels = rounded * 255.0
    assert torch.equal(levels, levels.round()) and torch.equal(target, clean)
    assert not torch.equal(plain * 255.0, (plain * 255.0).round())  # the default: unrounded
    assert float((rounded - plain).abs().max()) <= 0.5 / 255 + 1e-6


# ---------------------------------------------------------------- context share


@pytest.mark.parametrize("name", ["learned_denoising", "learned_deraining", "learned_dehazing"])
def test_context_combos_are_training_combinations_holding_the_type(name: str) -> None:
    """train_tools --context-share: only the combinations agents train on, none evaluated."""
    from dataclasses import replace

    from benchmarks import train_tools as tt
    from tir_env.degradations.protocols import COMBOS

    recipe = replace(tt.RECIPES[name], context_share=0.5)
    own = recipe.combos[0][0]
    combos = tt.context_combos(recipe)
    evaluated = {frozenset(c) for s in ("mio-b", "mio-c", "ood-d2", "ood-d3") for c in COMBOS[s]}
    assert combos and all(own in c and len(c) > 1 for c in combos)
    assert all("low_resolution" not in c and frozenset(c) not in evaluated for c in combos)


def test_a_context_example_keeps_the_other_degradations_in_its_target() -> None:
    """A context pair: the input is the whole chain, the target the chain without the type."""
    import numpy as np

    from benchmarks.train_tools import make_context_pair
    from tir_env.degradations import degrade
    from tir_env.degradations.base import replay
    from tir_env.images import u8_to_batch

    clean = u8_to_batch(np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8))
    combo = ("noise", "jpeg")
    x, y = make_context_pair(clean, combo, {"noise"}, np.random.default_rng(3), True)
    assert torch.equal(x * 255.0, (x * 255.0).round())  # rounded as asked
    assert not torch.equal(x, y) and not torch.equal(y, clean)  # the JPEG stays in the target
    rng = np.random.default_rng(3)
    listed = bool(rng.integers(2))
    _, applied = degrade(clean, list(combo), rng, order="listed" if listed else "physical")
    assert torch.equal(y, replay(clean, [step for step in applied if step[0] != "noise"]))


def test_context_share_outside_0_1_is_refused() -> None:
    from benchmarks.train_tools import parse_args

    with pytest.raises(SystemExit):
        parse_args(["--context-share", "1"])
