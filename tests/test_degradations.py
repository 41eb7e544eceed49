"""Tests of the degradation registry: every registered degradation keeps the contract.

Parametrised over :func:`degradation_names`, so a newly registered degradation is covered by
the contract, PSNR, determinism and property tests without editing this file.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from tir_env.degradations import (
    degradation_names,
    degrade,
    make_degradation,
    protocol_order,
    protocol_sorted,
    replay,
)
from tir_env.degradations.rlrestore import (
    BLUR_SIGMAS,
    JPEG_QUALITIES,
    NOISE_SIGMAS,
    NUM_LEVELS,
    SEVERITY_RANGES,
    sample_severity,
    valid_triples,
)
from tir_env.errors import ImageError, InvalidParameterError, UnknownNameError
from tir_env.images import resize

NAMES = degradation_names()
SEEDS_PER_PHOTO = 3

#: Published parameter ranges, inclusive: key -> (low, high, integer). Only the keys a draw
#: returns are checked (``noise`` returns ``sigma`` or ``scale``, ``dark`` one of three).
SEED: tuple[float, float, bool] = (0, 2**31 - 1, True)
PARAM_RANGES: dict[str, dict[str, tuple[float, float, bool]]] = {
    "low_resolution": {},
    "noise": {
        "poisson": (0, 1, True),
        "sigma": (20, 50, False),
        "scale": (1, 3, False),
        "seed": SEED,
    },
    "jpeg": {"quality": (10, 29, True)},
    "dark": {
        "mode": (0, 2, True),
        "shift": (30, 49, True),
        "gamma": (0.5, 0.7, False),
        "max_value": (100, 149, True),
    },
    "haze": {"A": (0.7, 1.0, False), "beta": (0.6, 1.8, False)},
    "motion_blur": {"severity": (0, 2, True), "angle": (-90, 90, False)},
    "defocus_blur": {"severity": (0, 2, True)},
    "rain": {
        "value": (50, 99, True),
        "length": (20, 39, True),
        "angle": (-30, 29, True),
        "seed": SEED,
    },
    "gaussian_blur": {"level": (1, 10, True), "sigma": (0, 5, False)},
    "gaussian_noise": {"level": (1, 10, True), "sigma": (0, 50, False), "seed": SEED},
    "jpeg_quality": {"level": (1, 10, True), "quality": (10, 100, True)},
}
#: Keys that pick one of several discrete choices: all values must appear in 60 draws.
CHOICES: dict[str, tuple[str, set[float]]] = {
    "noise": ("poisson", {0.0, 1.0}),
    "dark": ("mode", {0.0, 1.0, 2.0}),
    "motion_blur": ("severity", {0.0, 1.0, 2.0}),
    "defocus_blur": ("severity", {0.0, 1.0, 2.0}),
}

#: Ceiling on the mean PSNR (dB) between a clean test photo and its degraded version (4 photos
#: x 3 seeds, 64x64; low_resolution bicubic-upsampled back first), each PSNR capped at
#: PSNR_CAP so an identity draw (e.g. RL-Restore blur level 1) counts as "no change".
#: Means measured with exactly this protocol (dB): low_resolution 23.98, noise 20.70,
#: jpeg 26.12, dark 17.15, haze 12.06, motion_blur 21.16, defocus_blur 22.83, rain 18.84,
#: gaussian_blur 29.33, gaussian_noise 24.71, jpeg_quality 28.77. Each ceiling sits about 3 dB
#: above its mean; an unlisted (new) degradation must bring the photos below
#: DEFAULT_PSNR_CEILING.
PSNR_CAP = 60.0
DEFAULT_PSNR_CEILING = 40.0
PSNR_CEILING: dict[str, float] = {
    "low_resolution": 27.0,
    "noise": 24.0,
    "jpeg": 29.0,
    "dark": 20.0,
    "haze": 15.0,
    "motion_blur": 24.0,
    "defocus_blur": 26.0,
    "rain": 22.0,
    "gaussian_blur": 32.5,
    "gaussian_noise": 28.0,
    "jpeg_quality": 32.0,
}


def psnr(clean: torch.Tensor, other: torch.Tensor) -> float:
    """PSNR in dB for images in [0, 1], capped at PSNR_CAP."""
    mse = float(((clean - other) ** 2).mean())
    return PSNR_CAP if mse <= 10 ** (-PSNR_CAP / 10) else -10.0 * math.log10(mse)


def check_output(out: torch.Tensor, batch: torch.Tensor, name: str) -> None:
    n, c, h, w = batch.shape
    d = make_degradation(name).info.downscale
    assert tuple(out.shape) == (n, c, h // d, w // d)
    assert out.dtype == torch.float32
    assert torch.isfinite(out).all()
    assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0


# ------------------------------------------------------------------ registry


def test_builtin_names_registered() -> None:
    assert set(degradation_names("agenticir")) == {
        "low_resolution", "noise", "jpeg", "dark", "haze", "motion_blur", "defocus_blur", "rain",
    }  # fmt: skip
    assert set(degradation_names("rlrestore")) == {
        "gaussian_blur",
        "gaussian_noise",
        "jpeg_quality",
    }
    assert set(NAMES) <= set(protocol_order())


def test_unknown_name_suggests() -> None:
    with pytest.raises(UnknownNameError, match="Did you mean 'haze'"):
        make_degradation("hazee")


@pytest.mark.parametrize("name", NAMES)
def test_info(name: str) -> None:
    info = make_degradation(name).info
    assert info.name == name
    assert info.group in ("scene", "imaging", "compression")
    assert info.description
    assert info.downscale == (4 if name == "low_resolution" else 1)


# ------------------------------------------------------------------ contract on photos


@pytest.mark.parametrize("name", NAMES)
def test_contract_on_photos(name: str, test_batches: list[torch.Tensor]) -> None:
    deg = make_degradation(name)
    for k, batch in enumerate(test_batches):
        out, _ = deg(batch, np.random.default_rng(k))
        check_output(out, batch, name)


@pytest.mark.parametrize("name", NAMES)
def test_batch_matches_single(name: str, test_batches: list[torch.Tensor]) -> None:
    deg = make_degradation(name)
    batch = torch.cat(test_batches)
    params = deg.sample(np.random.default_rng(3))
    out = deg.apply(batch, params)
    check_output(out, batch, name)
    # Image 0 of a batch degrades exactly like the image alone (per-image noise streams).
    assert torch.equal(out[:1], deg.apply(batch[:1], params))


@pytest.mark.parametrize("name", NAMES)
def test_lowers_psnr(name: str, test_batches: list[torch.Tensor]) -> None:
    deg = make_degradation(name)
    values = []
    for k, clean in enumerate(test_batches):
        for s in range(SEEDS_PER_PHOTO):
            out, _ = deg(clean, np.random.default_rng(100 * k + s))
            values.append(psnr(clean, resize(out, (clean.shape[-2], clean.shape[-1]))))
    ceiling = PSNR_CEILING.get(name, DEFAULT_PSNR_CEILING)
    assert np.mean(values) <= ceiling, f"{name}: mean PSNR {np.mean(values):.2f} > {ceiling} dB"


# ------------------------------------------------------------------ determinism


@pytest.mark.parametrize("name", NAMES)
def test_deterministic(name: str, test_batches: list[torch.Tensor]) -> None:
    deg, clean = make_degradation(name), test_batches[1]
    out1, params1 = deg(clean, np.random.default_rng(42))
    out2, params2 = deg(clean, np.random.default_rng(42))
    assert params1 == params2
    assert torch.equal(out1, out2)
    assert torch.equal(deg.apply(clean, params1).clamp(0, 1), out1)


@pytest.mark.parametrize("name", NAMES)
def test_replay_reproduces_degrade(name: str, test_batches: list[torch.Tensor]) -> None:
    clean = test_batches[2]
    degraded, applied = degrade(clean, [name], np.random.default_rng(7))
    assert [n for n, _ in applied] == [name]
    assert torch.equal(replay(clean, applied), degraded)


@pytest.mark.parametrize("name", NAMES)
def test_global_rngs_untouched(name: str, test_batches: list[torch.Tensor]) -> None:
    # The legacy global generators must be neither read nor advanced.
    np_state = np.random.get_state()  # noqa: NPY002
    torch_state = torch.random.get_rng_state()
    make_degradation(name)(test_batches[0], np.random.default_rng(5))
    after = np.random.random()  # noqa: NPY002
    np.random.set_state(np_state)  # noqa: NPY002
    assert after == np.random.random()  # noqa: NPY002
    assert torch.equal(torch.random.get_rng_state(), torch_state)


# ------------------------------------------------------------------ parameters


@pytest.mark.parametrize("name", NAMES)
def test_params_in_published_ranges(name: str) -> None:
    deg = make_degradation(name)
    rng = np.random.default_rng(0)
    draws = [deg.sample(rng) for _ in range(60)]
    for params in draws:
        assert all(isinstance(v, float) and math.isfinite(v) for v in params.values()), params
    if deg.info.protocol not in ("agenticir", "rlrestore"):
        return  # third-party degradation: only the generic checks apply
    spec = PARAM_RANGES[name]
    for params in draws:
        for key, value in params.items():
            assert key in spec, f"{name}: undocumented parameter {key!r}"
            low, high, integer = spec[key]
            assert low <= value <= high, f"{name}: {key}={value} outside [{low}, {high}]"
            assert not integer or value == round(value), f"{name}: {key}={value} not an integer"
    if name in CHOICES:
        key, expected = CHOICES[name]
        assert {p[key] for p in draws} == expected


def test_noise_and_dark_keys_follow_mode() -> None:
    rng = np.random.default_rng(1)
    for _ in range(30):
        noise = make_degradation("noise").sample(rng)
        assert set(noise) == {"poisson", "seed", "scale" if noise["poisson"] else "sigma"}
        dark = make_degradation("dark").sample(rng)
        assert set(dark) == {"mode", ("shift", "gamma", "max_value")[int(dark["mode"])]}


def test_missing_param_is_named() -> None:
    clean = torch.rand(1, 3, 16, 16)
    with pytest.raises(InvalidParameterError, match="'sigma'"):
        make_degradation("noise").apply(clean, {"poisson": 0.0, "seed": 1.0})


@pytest.mark.parametrize("mode", [0, 1, 2])
def test_dark_darkens_every_pixel(mode: int, test_batches: list[torch.Tensor]) -> None:
    deg, clean = make_degradation("dark"), test_batches[2]  # the brightest photo
    key, value = [("shift", 30.0), ("gamma", 0.69), ("max_value", 149.0)][mode]
    out = deg.apply(clean, {"mode": float(mode), key: value})
    assert float(out.amax(1).mean()) < float(clean.amax(1).mean()) - 0.05
    if mode < 2:  # shift and gamma never brighten a pixel's value
        assert bool((out.amax(1) <= clean.amax(1) + 1e-6).all())


def test_low_resolution_matches_matlab_imresize(test_batches: list[torch.Tensor]) -> None:
    # pyiqa ships BasicSR's port of MATLAB imresize, the function AgenticIR calls.
    matlab = pytest.importorskip("pyiqa.matlab_utils")
    deg = make_degradation("low_resolution")
    for clean in test_batches:
        reference = matlab.imresize(clean, scale=0.25).clamp(0, 1)
        torch.testing.assert_close(deg.apply(clean, {}), reference, atol=1e-5, rtol=0)


def test_low_resolution_needs_multiple_of_four() -> None:
    with pytest.raises(ImageError, match="divisible by 4"):
        make_degradation("low_resolution").apply(torch.rand(1, 3, 30, 32), {})


# ------------------------------------------------------------------ combinations


@pytest.mark.parametrize(
    "combo",
    [
        ["haze", "motion_blur", "low_resolution"],
        ["rain", "noise", "low_resolution"],
        ["dark", "defocus_blur", "jpeg"],
        ["motion_blur", "defocus_blur", "noise"],
        ["gaussian_blur", "gaussian_noise", "jpeg_quality"],
    ],
)
def test_degrade_applies_protocol_order(combo: list[str], test_batches: list[torch.Tensor]) -> None:
    clean = test_batches[0]
    reference, applied = degrade(clean, protocol_sorted(combo), np.random.default_rng(11))
    assert [n for n, _ in applied] == protocol_sorted(combo)
    for order in itertools.permutations(combo):
        out, applied_again = degrade(clean, list(order), np.random.default_rng(11))
        assert [n for n, _ in applied_again] == [n for n, _ in applied]
        assert torch.equal(out, reference)
    assert torch.equal(replay(clean, applied), reference)


def test_degrade_rejects_repeats(test_batches: list[torch.Tensor]) -> None:
    with pytest.raises(ValueError, match="repeats"):
        degrade(test_batches[0], ["noise", "noise"], np.random.default_rng(0))


# ------------------------------------------------------------------ property test


@pytest.mark.parametrize("name", NAMES)
@given(
    h=st.integers(2, 10).map(lambda k: 4 * k),
    w=st.integers(2, 10).map(lambda k: 4 * k),
    seed=st.integers(0, 2**32 - 1),
)
def test_contract_on_random_images(name: str, h: int, w: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 256, (1, 3, h, w), dtype=np.uint8)
    batch = torch.from_numpy(image.astype(np.float32) / 255.0)
    out, params = make_degradation(name)(batch, rng)
    check_output(out, batch, name)
    assert torch.equal(replay(batch, [(name, params)]), out)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("level", [0.0, 0.5, 1.0])
@pytest.mark.parametrize("size", [(4, 4), (8, 12)])
def test_contract_on_flat_images(name: str, level: float, size: tuple[int, int]) -> None:
    batch = torch.full((2, 3, *size), level)
    out, _ = make_degradation(name)(batch, np.random.default_rng(0))
    check_output(out, batch, name)


@pytest.mark.gpu
@pytest.mark.parametrize("name", NAMES)
def test_cuda_matches_cpu(name: str, test_batches: list[torch.Tensor]) -> None:
    if not torch.cuda.is_available():
        pytest.skip("needs CUDA")
    deg, clean = make_degradation(name), torch.cat(test_batches)
    params = deg.sample(np.random.default_rng(0))
    out = deg.apply(clean.cuda(), params)
    assert out.device.type == "cuda"
    torch.testing.assert_close(out.cpu(), deg.apply(clean, params), atol=1e-4, rtol=0)


# ------------------------------------------------------------------ RL-Restore


def _noise_combination(low: int, high: int) -> list[tuple[int, ...]]:
    """RL-Restore's noise_combination.m, transcribed: sorted triples and their permutations."""
    rows = []
    for k in range(1, 11):
        for m in range(k, 11):
            for n in range(m, 11):
                if low <= k + m + n - 2 <= high:
                    rows += sorted(set(itertools.permutations((k, m, n))))
    return rows


@pytest.mark.parametrize("severity", list(SEVERITY_RANGES))
def test_valid_triples_match_rlrestore(severity: str) -> None:
    triples = valid_triples(severity)
    assert len(set(triples)) == len(triples)
    assert sorted(triples) == sorted(_noise_combination(*SEVERITY_RANGES[severity]))


@pytest.mark.parametrize("severity", list(SEVERITY_RANGES))
def test_sample_severity_levels(severity: str, test_batches: list[torch.Tensor]) -> None:
    low, high = SEVERITY_RANGES[severity]
    edges = {
        "gaussian_blur": BLUR_SIGMAS,
        "gaussian_noise": NOISE_SIGMAS,
        "jpeg_quality": JPEG_QUALITIES,
    }
    rng = np.random.default_rng(0)
    for _ in range(40):
        combo = sample_severity(severity, rng)  # type: ignore[arg-type]
        assert [n for n, _ in combo] == ["gaussian_blur", "gaussian_noise", "jpeg_quality"]
        levels = [int(p["level"]) for _, p in combo]
        assert low <= sum(levels) - 2 <= high
        for (name, params), level in zip(combo, levels, strict=True):
            value = params["sigma" if name != "jpeg_quality" else "quality"]
            a, b = edges[name][level - 1], edges[name][level]
            assert min(a, b) <= value <= max(a, b)
    out = replay(test_batches[0], sample_severity(severity, rng))  # type: ignore[arg-type]
    check_output(out, test_batches[0], "gaussian_blur")


def test_severities_order_by_psnr(test_batches: list[torch.Tensor]) -> None:
    rng = np.random.default_rng(0)
    mean = {
        sev: np.mean(
            [psnr(c, replay(c, sample_severity(sev, rng))) for c in test_batches for _ in range(3)]
        )
        for sev in ("mild", "moderate", "severe")
    }
    assert mean["mild"] > mean["moderate"] > mean["severe"]


def test_sample_severity_unknown() -> None:
    with pytest.raises(InvalidParameterError, match="Did you mean 'mild'"):
        sample_severity("milde", np.random.default_rng(0))  # type: ignore[arg-type]


@pytest.mark.parametrize("name", ["gaussian_blur", "gaussian_noise", "jpeg_quality"])
def test_sample_level_bins(name: str) -> None:
    deg = make_degradation(name)
    rng = np.random.default_rng(0)
    for level in range(1, NUM_LEVELS + 1):
        assert deg.sample_level(level, rng)["level"] == level  # type: ignore[attr-defined]
    for bad in (0, NUM_LEVELS + 1):
        with pytest.raises(InvalidParameterError, match="level"):
            deg.sample_level(bad, rng)  # type: ignore[attr-defined]


@pytest.mark.parametrize("name", ["gaussian_blur", "gaussian_noise"])
def test_zero_sigma_is_identity(name: str, test_batches: list[torch.Tensor]) -> None:
    clean = test_batches[0]
    out = make_degradation(name).apply(clean, {"level": 1.0, "sigma": 0.0, "seed": 3.0})
    assert torch.equal(out, clean)


def test_stronger_level_lowers_psnr(test_batches: list[torch.Tensor]) -> None:
    clean = test_batches[0]
    for name in ("gaussian_blur", "gaussian_noise", "jpeg_quality"):
        deg = make_degradation(name)
        rng = np.random.default_rng(0)
        values = [psnr(clean, deg.apply(clean, deg.sample_level(lv, rng))) for lv in (2, 5, 10)]  # type: ignore[attr-defined]
        assert values[0] > values[1] > values[2], (name, values)
