"""Expert trajectories, their files, and the random perturbation of their paths."""

from __future__ import annotations

import numpy as np
import pytest

from agents.vlm import perturb
from agents.vlm import trajectories as T
from agents.vlm.errors import TrajectoryError
from tir_env.env import TIREnv
from tir_env.tools.base import tool_info, tool_names
from tir_env.types import ToolCall

TOOLS = tuple(tool_names(kinds=("classical",)))
PATH = [ToolCall("dct_denoise"), ToolCall("gamma_correction"), ToolCall("jpeg_tv")]
KW = dict(images="test", patch_size=32, obs_size=32, max_steps=3, metrics=("psnr", "ssim"))


def test_reorder_is_a_different_permutation():
    rng = np.random.default_rng(0)
    for _ in range(20):
        out = perturb.reorder(PATH, rng)
        assert sorted(map(str, out)) == sorted(map(str, PATH)) and out != PATH
    assert perturb.reorder(PATH[:1], rng) == PATH[:1]


def test_swap_keeps_every_task():
    rng = np.random.default_rng(1)
    for _ in range(20):
        out = perturb.swap(PATH, TOOLS, rng)
        assert [tool_info(c.tool).task for c in out] == [tool_info(c.tool).task for c in PATH]
        assert sum(a != b for a, b in zip(out, PATH, strict=True)) == 1


def test_jitter_stays_in_range():
    rng = np.random.default_rng(2)
    for _ in range(50):
        call = perturb.jitter(ToolCall("dark_channel_prior"), rng)
        spec = tool_info(call.tool).params
        assert len(call.params) == 1
        for k, v in call.params.items():
            assert spec[k].low <= v <= spec[k].high


def test_perturb_path_probabilities():
    rng = np.random.default_rng(3)
    assert perturb.perturb_path(PATH, TOOLS, rng, perturb.PerturbConfig(p=0.0)) == PATH
    changed = [
        perturb.perturb_path(PATH, TOOLS, rng, perturb.PerturbConfig(p=1.0)) != PATH
        for _ in range(10)
    ]
    assert all(changed)
    with pytest.raises(ValueError):
        perturb.PerturbConfig(p=1.5)


def test_perturbed_paths_are_re_executed_and_files_round_trip(tmp_path):
    env = TIREnv(**KW)
    key = T.EpisodeKey("flower", ("dark", "noise"), 7)
    expert = T.execute(env, key, PATH[:2], "expert")
    assert len(expert.images) == 3 and expert.records[-1].call is None  # stopped
    variants = perturb.perturb_all(env, [expert], perturb.PerturbConfig(p=1.0, copies=2), seed=0)
    assert variants and all(v.source == "perturbed" and v.calls != expert.calls for v in variants)
    v = variants[0]
    env.reset(seed=key.seed, options=key.options())
    assert np.array_equal(v.images[0], env.current_image())  # same episode
    assert [r.call.tool for r in T.tool_records(v)] == [c.tool for c in v.calls]
    T.save([expert, *variants], tmp_path / "data")
    back = T.load(tmp_path / "data")
    assert [b.calls for b in back] == [expert.calls] + [x.calls for x in variants]
    assert all(
        np.array_equal(a, b)
        for x, y in zip(back, [expert, *variants], strict=True)
        for a, b in zip(x.images, y.images, strict=True)
    )
    assert back[0].gain() == pytest.approx(expert.gain())
    assert T.answers(back[0], 3)[-1] is None and T.answers(back[0], 2) == PATH[:2]
    with pytest.raises(TrajectoryError):
        T.load(tmp_path / "missing")
