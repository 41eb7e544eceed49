"""Test-time flips of the learned tools (tir_env.tools.learned.flips)."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from tir_env.errors import ConfigValueError
from tir_env.tools.learned import SPECS, TOOL_CLASSES, flips
from tir_env.tools.learned.weights import weights_path

MODES = sorted(flips.MODES)


def _ramp_forward(x: torch.Tensor, prior: torch.Tensor | None) -> torch.Tensor:
    """A forward that is not mirror-symmetric: it adds a left-to-right ramp."""
    ramp = torch.linspace(0.0, 0.2, x.shape[-1]).expand_as(x)
    return x + ramp + (0.0 if prior is None else 0.0 * prior)


@settings(max_examples=25, deadline=None)
@given(
    mode=st.sampled_from(MODES),
    seed=st.integers(0, 2**31 - 1),
    size=st.tuples(st.integers(1, 9), st.integers(1, 9)),
)
def test_a_mirror_symmetric_forward_is_unchanged_by_every_mode(
    mode: str, seed: int, size: tuple[int, int]
) -> None:
    x = torch.rand(2, 3, *size, generator=torch.Generator().manual_seed(seed))
    prior = 1.0 - x

    def forward(a: torch.Tensor, p: torch.Tensor | None) -> torch.Tensor:
        assert p is not None
        return 0.5 * a + 0.25 * p  # pixelwise: mirrors with its inputs

    out = flips.averaged(forward, x, prior, mode)
    torch.testing.assert_close(out, forward(x, prior))


def test_the_prior_is_flipped_with_the_input() -> None:
    x = torch.rand(1, 3, 5, 7)
    prior = torch.rand(1, 3, 5, 7)

    def forward(a: torch.Tensor, p: torch.Tensor | None) -> torch.Tensor:
        assert p is not None
        return a * p  # pixelwise, so only a prior flipped with the input leaves it exact

    torch.testing.assert_close(flips.averaged(forward, x, prior, "hv"), x * prior)


def test_a_left_right_flip_averages_away_a_left_right_ramp() -> None:
    x = torch.zeros(1, 1, 2, 5)
    plain = flips.averaged(_ramp_forward, x, None, "")
    mirrored = flips.averaged(_ramp_forward, x, None, "h")
    assert not torch.allclose(plain, plain.flip(-1))
    torch.testing.assert_close(mirrored, torch.full_like(x, 0.1))


def test_no_mode_is_exactly_the_forward() -> None:
    x = torch.rand(1, 3, 4, 6)
    torch.testing.assert_close(flips.averaged(_ramp_forward, x, None, ""), _ramp_forward(x, None))


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("", None),
        ("none", {}),
        ("learned_deraining=hv", {"learned_deraining": "hv"}),
        (
            "learned_deraining=hv, learned_dehazing=h",
            {"learned_deraining": "hv", "learned_dehazing": "h"},
        ),
        ("learned_deraining=", {"learned_deraining": ""}),
    ],
)
def test_the_variable_is_read(
    monkeypatch: pytest.MonkeyPatch, value: str, expected: object
) -> None:
    monkeypatch.setenv(flips.ENV, value)
    assert flips.overrides() == expected


@pytest.mark.parametrize("value", ["learned_deraining", "learned_deraining=x", "=hv", "hv"])
def test_a_malformed_variable_is_named(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv(flips.ENV, value)
    with pytest.raises(ConfigValueError, match=flips.ENV):
        flips.overrides()


def test_the_variable_overrides_the_spec(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(flips.ENV, raising=False)
    assert flips.mode_for("learned_deraining", "hv", coords=False) == "hv"
    monkeypatch.setenv(flips.ENV, "none")
    assert flips.mode_for("learned_deraining", "hv", coords=False) == ""
    monkeypatch.setenv(flips.ENV, "learned_denoising=h")
    assert flips.mode_for("learned_deraining", "hv", coords=False) == "hv"
    assert flips.mode_for("learned_denoising", "", coords=False) == "h"


@pytest.mark.parametrize("mode", ["v", "hv"])
def test_a_network_reading_the_rows_is_not_flipped_upside_down(mode: str) -> None:
    with pytest.raises(ConfigValueError, match="vertical position"):
        flips.mode_for("learned_dehazing", mode, coords=True)


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.name)
def test_every_shipped_spec_has_a_valid_mode(spec: object, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(flips.ENV, raising=False)
    assert flips.mode_for(spec.name, spec.flips, spec.coords) in flips.MODES  # type: ignore[attr-defined]


@pytest.mark.skipif(
    not weights_path("learned_deraining").is_file(), reason="learned_deraining weights not shipped"
)
def test_the_tool_runs_with_and_without_flips(monkeypatch: pytest.MonkeyPatch) -> None:
    x = torch.rand(2, 3, 24, 20, generator=torch.Generator().manual_seed(0))
    tool = TOOL_CLASSES["learned_deraining"]()
    monkeypatch.setenv(flips.ENV, "none")
    plain = tool.apply(x, {})
    monkeypatch.setenv(flips.ENV, "learned_deraining=hv")
    mirrored = tool.apply(x, {})
    assert mirrored.shape == plain.shape == x.shape
    assert float(mirrored.min()) >= 0.0 and float(mirrored.max()) <= 1.0
    assert not torch.equal(mirrored, plain)
    # the first image does not depend on the second (each copy runs the whole batch)
    torch.testing.assert_close(tool.apply(x[:1], {}), mirrored[:1])


@pytest.mark.parametrize(
    ("value", "match"),
    [
        ("learned_deraning=hv", "Did you mean 'learned_deraining'"),
        ("learned_dehazing=hv", "vertical position"),
        ("learned_deraining=sideways", "MODE one of"),
    ],
)
def test_a_bad_variable_is_refused_when_the_tools_load(
    monkeypatch: pytest.MonkeyPatch, value: str, match: str
) -> None:
    from tir_env.tools.learned import check_flips_variable

    monkeypatch.setenv(flips.ENV, value)
    with pytest.raises(ConfigValueError, match=match):
        check_flips_variable()


def test_a_bad_variable_stops_the_import_at_once() -> None:
    import os
    import subprocess
    import sys

    env = {**os.environ, flips.ENV: "learned_deraning=hv"}
    done = subprocess.run(
        [sys.executable, "-c", "import tir_env.tools.learned"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode != 0
    assert "ConfigValueError" in done.stderr and flips.ENV in done.stderr


def test_a_forward_that_returns_its_input_is_not_modified_in_place() -> None:
    x = torch.rand(1, 3, 4, 5)
    kept = x.clone()
    out = flips.averaged(lambda a, p: a, x, None, "hv")
    torch.testing.assert_close(x, kept)
    torch.testing.assert_close(out, kept)


@pytest.mark.skipif(
    not weights_path("learned_deraining").is_file(), reason="learned_deraining weights not shipped"
)
def test_a_variable_set_after_the_import_is_checked_at_the_call(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(flips.ENV, "learned_deraning=hv")
    with pytest.raises(ConfigValueError, match="Did you mean"):
        TOOL_CLASSES["learned_deraining"]().apply(torch.rand(1, 3, 8, 8), {})


def test_single_pass_runs_every_network_once_and_ends_with_its_block(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(flips.ENV, "learned_deraining=hv")
    assert flips.mode_for("learned_deraining", "hv", coords=False) == "hv"
    with flips.single_pass():
        assert flips.mode_for("learned_deraining", "hv", coords=False) == ""
        with flips.single_pass():  # nested: the outer block still holds after the inner
            pass
        assert flips.mode_for("learned_deraining", "hv", coords=False) == ""
    assert flips.mode_for("learned_deraining", "hv", coords=False) == "hv"


def test_single_pass_holds_on_the_pool_s_threads() -> None:
    import threading

    seen: list[str] = []
    with flips.single_pass():
        worker = threading.Thread(
            target=lambda: seen.append(flips.mode_for("learned_deraining", "hv", coords=False))
        )
        worker.start()
        worker.join()
    assert seen == [""]


def test_the_cache_tag_names_the_flips_in_force(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(flips.ENV, raising=False)
    assert flips.cache_tag() == ""  # the default keys are the ones the cache always had
    with flips.single_pass():
        single = flips.cache_tag()
    monkeypatch.setenv(flips.ENV, "none")
    assert len({"", single, flips.cache_tag()}) == 3


@pytest.mark.skipif(
    not weights_path("learned_deraining").is_file(), reason="learned_deraining weights not shipped"
)
def test_the_pool_does_not_hand_back_a_mirrored_result_in_a_single_pass(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from tir_env.tools.pool import make_pool
    from tir_env.types import ToolCall

    monkeypatch.delenv(flips.ENV, raising=False)
    x = torch.rand(1, 3, 24, 20, generator=torch.Generator().manual_seed(1))
    call = ToolCall("learned_deraining", {})
    pool = make_pool(backend="local", workers=1)
    try:
        mirrored = pool.run(x, call).image
        with flips.single_pass():
            single = pool.run(x, call)
        assert single.image is not None and mirrored is not None
        assert not single.cached and not torch.equal(single.image, mirrored)
        assert pool.run(x, call).cached  # the mirrored one is still kept
    finally:
        pool.close()


@pytest.mark.skipif(
    not weights_path("learned_deraining").is_file(), reason="learned_deraining weights not shipped"
)
def test_a_network_runs_channels_last_on_a_cpu_and_contiguous_elsewhere() -> None:
    from tir_env.tools.learned import memory_format

    assert memory_format(torch.device("cpu")) is torch.channels_last
    assert memory_format(torch.device("cuda")) is torch.contiguous_format
    tool = TOOL_CLASSES["learned_deraining"]()
    convs = [p for p in tool.network().parameters() if p.dim() == 4]
    assert convs and all(p.is_contiguous(memory_format=torch.channels_last) for p in convs)
    out = tool.apply(torch.rand(1, 3, 24, 20, generator=torch.Generator().manual_seed(2)), {})
    assert out.is_contiguous()  # callers get the layout they always got
    tool.to("meta")  # another device (no GPU here): the default layout comes back
    assert all(p.is_contiguous() for p in tool.network().parameters())


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.name)
def test_a_call_without_gradients_gives_the_training_path_s_values_bit_for_bit(
    spec: object,
) -> None:
    """ResBlock's in-place inference path (no new full-size tensors) changes no value."""
    name = spec.name  # type: ignore[attr-defined]
    if not weights_path(name).is_file():
        pytest.skip(f"{name} weights not shipped")
    from tir_env.tools.base import make_tool

    side = 10 if spec.scale > 1 else 36  # type: ignore[attr-defined]
    x = torch.rand(2, 3, side, side + 4, generator=torch.Generator().manual_seed(3))
    prior = None if spec.prior is None else make_tool(spec.prior)(x)  # type: ignore[attr-defined]
    net = TOOL_CLASSES[name]().network()
    kept = x.clone()
    with torch.enable_grad():
        trained_way = net(x, prior).detach()
    with torch.no_grad():
        called_way = net(x, prior)
    assert torch.equal(trained_way, called_way)
    assert torch.equal(x, kept)  # the input is never written to


def test_a_residual_block_without_gradients_leaves_its_input_and_values_alone() -> None:
    from tir_env.tools.learned.nets import ResBlock

    torch.manual_seed(4)
    block = ResBlock(8)
    x = torch.randn(2, 8, 12, 10)
    kept = x.clone()
    with torch.enable_grad():
        trained_way = block(x).detach()
    with torch.no_grad():
        called_way = block(x)
    assert torch.equal(trained_way, called_way) and called_way is not x
    assert torch.equal(x, kept)
