"""``ppo``'s test-time mirrored views (``ppo.flips``): agents.ppo.agent.mirrored."""

from __future__ import annotations

import numpy as np
import pytest

from agents.ppo.agent import mirrored
from tir_env.errors import ConfigValueError


def _view(seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "image": rng.integers(0, 256, (3, 4, 6), dtype=np.uint8),
        "input": rng.integers(0, 256, (3, 4, 6), dtype=np.uint8),
        "history": rng.random(10).astype(np.float32),
        "perceived": rng.random(16).astype(np.float32),
    }


@pytest.mark.parametrize(("mode", "copies"), [("", 1), ("h", 2), ("v", 2), ("hv", 4)])
def test_each_view_gets_its_mirrored_copies(mode: str, copies: int) -> None:
    views = [_view(0), _view(1)]
    out = mirrored(mode, views)
    assert len(out) == copies * len(views)
    assert out[0] is not views[0] and np.array_equal(out[0]["image"], views[0]["image"])


def test_only_the_images_are_flipped() -> None:
    view = _view()
    plain, left_right, upside_down, both = mirrored("hv", [view])
    assert np.array_equal(left_right["image"], view["image"][:, :, ::-1])
    assert np.array_equal(left_right["input"], view["input"][:, :, ::-1])
    assert np.array_equal(upside_down["image"], view["image"][:, ::-1, :])
    assert np.array_equal(both["input"], view["input"][:, ::-1, ::-1])
    for copy in (plain, left_right, upside_down, both):
        assert copy["history"] is view["history"] and copy["perceived"] is view["perceived"]
        assert copy["image"].flags["C_CONTIGUOUS"]
    assert np.array_equal(view["image"], _view()["image"])  # the view itself is untouched


@pytest.mark.parametrize("mode", ["x", "hh", "vh", "H"])
def test_an_unknown_mode_is_named(mode: str) -> None:
    with pytest.raises(ConfigValueError, match="flips"):
        mirrored(mode, [_view()])


def test_the_agent_refuses_an_unknown_mode_when_built() -> None:
    from agents.base import make_agent

    with pytest.raises(ConfigValueError, match="flips"):
        make_agent("ppo", flips="sideways")
