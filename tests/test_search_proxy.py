"""Search on a crop of large images (``search_size``): aligned crops, same results when unused."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from agents.base import make_agent, rollout
from agents.search import search_view
from tir_env.env import TIREnv
from tir_env.errors import InvalidParameterError

torch.set_num_threads(1)


@settings(max_examples=60, deadline=None)
@given(
    h=st.integers(4, 40),
    w=st.integers(4, 40),
    scale=st.sampled_from([1, 4]),
    size=st.integers(16, 200),
)
def test_search_view_crops_the_same_part_of_the_scene(h, w, scale, size):
    reference = torch.rand(1, 3, h * scale, w * scale)
    # the input is the reference seen at 1/scale: one pixel per scale x scale block
    image = reference[..., ::scale, ::scale].contiguous()
    view, region = search_view(image, (h * scale, w * scale), size)
    if region is None:  # small enough: searched whole
        assert view is image and max(h, w) * scale <= size
        return
    ref = region.of(reference)
    assert ref.shape[-2:] == (view.shape[-2] * scale, view.shape[-1] * scale)
    assert max(ref.shape[-2:]) <= max(size, scale)  # never larger than asked (one input pixel)
    assert torch.equal(ref[..., ::scale, ::scale], view)  # the same region of the scene


def test_search_view_leaves_small_images_and_no_size_alone():
    image = torch.rand(1, 3, 30, 20)
    assert search_view(image, (30, 20), None) == (image, None)
    assert search_view(image, (30, 20), 30) == (image, None)
    view, region = search_view(image, None, 16)  # no reference: the input's own size counts
    assert view.shape[-2:] == (16, 16) and region is not None and region.height == 16


def test_search_size_below_minimum_is_a_named_error():
    with pytest.raises(InvalidParameterError, match="search_size"):
        make_agent("exhaustive-ref", search_size=8)


KW = dict(images="test", patch_size=64, obs_size=32, max_steps=2)
OPTIONS = {"degradations": ("dark", "noise")}


def test_search_size_larger_than_the_image_changes_nothing():
    plain = rollout(TIREnv(**KW), make_agent("exhaustive-ref"), seed=1, options=OPTIONS)
    proxy = rollout(
        TIREnv(**KW), make_agent("exhaustive-ref", search_size=64), seed=1, options=OPTIONS
    )
    assert [r.call for r in proxy.records] == [r.call for r in plain.records]
    assert proxy.tool_executions == plain.tool_executions
    assert proxy.metrics_output == pytest.approx(plain.metrics_output)


def test_search_on_a_crop_runs_the_path_on_the_whole_image_and_counts_it():
    env = TIREnv(**KW)
    agent = make_agent("exhaustive-ref", search_size=32)
    seen: list[tuple[int, int]] = []
    lookahead = env.lookahead

    def spy(image, calls):
        seen.append(tuple(image.shape[-2:]))
        return lookahead(image, calls)

    env.lookahead = spy  # type: ignore[method-assign]
    ep = rollout(env, agent, seed=1, options=OPTIONS)
    calls = [r.call for r in ep.records if r.call is not None]
    assert calls, "a dark, noisy input has a path that raises PSNR"
    assert set(seen) == {(32, 32)}  # every candidate ran on the crop
    searched = agent.tool_executions - len(calls)
    assert searched >= len(env.tools)  # the whole first level, plus the path run on the whole
    assert ep.metrics_output["psnr"] > ep.metrics_input["psnr"]
