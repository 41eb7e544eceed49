"""A large image's defocus radius, read window by window (classical.disk_windows)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from tir_env.degradations import degrade, make_degradation
from tir_env.images import batch_to_hwc, u8_to_batch
from tir_env.tools import make_tool
from tir_env.tools.classical import disk_windows
from tir_env.tools.classical.blur_estimation import estimate_disk_radii_torch
from tir_env.tools.classical.disk_windows import (
    MAX_WINDOWS,
    WINDOW,
    agreed_radius,
    estimate_disk_radii_windows_torch,
    estimate_disk_radius_windows,
    window_origins,
)

torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _windows_on(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test reads with the windows on (a test turns them off itself)."""
    monkeypatch.setattr(disk_windows, "ENABLED", True)


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 3000), st.integers(1, 3000))
def test_windows_are_whole_disjoint_and_inside(height: int, width: int) -> None:
    origins = window_origins(height, width)
    if (height // WINDOW) * (width // WINDOW) < 2:
        assert origins == []  # the suites' crops are read as before
        return
    assert 2 <= len(origins) <= MAX_WINDOWS
    assert all(
        t >= 0 and t + WINDOW <= height and x >= 0 and x + WINDOW <= width for t, x in origins
    )
    assert len(set(origins)) == len(origins)
    assert all(abs(a[0] - b[0]) >= WINDOW or abs(a[1] - b[1]) >= WINDOW
               for i, a in enumerate(origins) for b in origins[i + 1 :])  # fmt: skip


def test_agreement_needs_two_windows_else_the_centre_stands() -> None:
    assert agreed_radius([0.0, 6.0, 0.0, 6.0], centre=0.0) == 6.0
    assert agreed_radius([0.0, 6.0, 0.0, 4.0], centre=0.0) == 0.0  # one window each
    assert agreed_radius([0.0, 6.0, 0.0, 4.0], centre=3.0) == 3.0
    assert agreed_radius([4.0, 4.0, 6.0, 6.0, 6.0], centre=4.0) == 6.0  # the most agreed
    assert agreed_radius([4.0, 4.0, 6.0, 6.0], centre=0.0) == 6.0  # a tie: the larger
    assert agreed_radius([], centre=4.0) == 4.0


def _scene(height: int, width: int, seed: int) -> torch.Tensor:
    """A textured photo-like image: smooth shading plus random edges of every scale."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width] / max(height, width)
    base = 0.5 + 0.2 * np.sin(7 * x + 3 * y)
    for _ in range(300):
        cy, cx, r = rng.uniform(0, 1), rng.uniform(0, 1), rng.uniform(0.005, 0.08)
        base = np.where((y - cy) ** 2 + (x - cx) ** 2 < r * r, rng.uniform(0, 1), base)
    image = np.repeat(base[..., None], 3, axis=2) * rng.uniform(0.6, 1.0, 3)
    return u8_to_batch((np.clip(image, 0, 1) * 255).astype(np.uint8))


def _flat_centre(batch: torch.Tensor) -> torch.Tensor:
    """``batch`` with its centre 200 px replaced by their mean: a sky in the middle."""
    out = batch.clone()
    h, w = out.shape[-2:]
    t, x = h // 2 - 100, w // 2 - 100
    out[..., t : t + 200, x : x + 200] = out[..., t : t + 200, x : x + 200].mean()
    return out


def _defocus(batch: torch.Tensor, severity: float) -> torch.Tensor:
    """The protocol's defocus blur at ``severity`` (0, 1, 2: radius 3, 4, 6)."""
    return make_degradation("defocus_blur").apply(batch, {"severity": severity})


@pytest.mark.parametrize("severity", [1.0, 2.0])
def test_a_defocused_photo_with_a_flat_centre_is_found_by_its_windows(severity: float) -> None:
    clean = _flat_centre(_scene(400, 540, 1))
    blurred = _defocus(clean, severity)
    assert estimate_disk_radii_torch(blurred) == [0.0]  # the centre crop shows nothing
    radius = (3.0, 4.0, 6.0)[int(severity)]
    assert estimate_disk_radii_windows_torch(blurred) == [radius]
    assert estimate_disk_radius_windows(batch_to_hwc(blurred)[0]) == radius  # numpy reference
    tool = make_tool("defocus_wiener")
    restored = tool.apply(blurred, {"radius": 0.0, "snr_db": 40.0})
    err = lambda a: float(((a - clean) ** 2).mean())  # noqa: E731
    assert err(restored) < 0.7 * err(blurred)


def test_a_sharp_photo_and_a_crop_are_read_as_before(monkeypatch: pytest.MonkeyPatch) -> None:
    sharp = _scene(400, 540, 2)
    assert estimate_disk_radii_windows_torch(sharp) == [0.0]
    crops = torch.cat([_scene(128, 128, s) for s in range(3)])
    blurred, _ = degrade(crops[:1], ["defocus_blur"], np.random.default_rng(0))
    batch = torch.cat([crops, blurred])
    assert estimate_disk_radii_windows_torch(batch) == estimate_disk_radii_torch(batch)
    monkeypatch.setattr(disk_windows, "ENABLED", False)
    flat = _flat_centre(_scene(400, 540, 1))
    defocused = _defocus(flat, 2.0)
    assert estimate_disk_radii_windows_torch(defocused) == [0.0]  # off: the centre crop only


def test_batched_windows_match_the_numpy_reference() -> None:
    rng = np.random.default_rng(3)
    photos = torch.cat([_flat_centre(_scene(300, 420, s)) for s in range(3)])
    blurred = torch.cat([degrade(p[None], ["defocus_blur"], rng)[0] for p in photos])
    batch = torch.cat([photos, blurred])
    expected = [estimate_disk_radius_windows(i) for i in batch_to_hwc(batch)]
    assert estimate_disk_radii_windows_torch(batch) == expected


def test_the_benchmark_pairs_episodes_and_the_docs_section_is_current() -> None:
    from pathlib import Path

    from benchmarks.disk_windows import END, START, section, summary

    row = {"agent": "fixed", "photo": "p", "combo": "defocus_blur", "psnr_in": 20.0}
    rows = {"off": [{**row, "psnr_out": 21.0}], "on": [{**row, "psnr_out": 24.0}]}
    by_combo, overall = summary(rows)
    assert by_combo["change"] == pytest.approx(3.0) and by_combo["changed"] == 1
    assert overall["combo"] == "all" and overall["on"] == pytest.approx(4.0)
    docs = (Path(__file__).resolve().parents[1] / "docs" / "tools.md").read_text()
    current = docs[docs.index(START) : docs.index(END) + len(END)]
    assert current == section(), "run: python -m benchmarks.disk_windows --doc"


def test_8_bit_images_are_told_from_float_ones() -> None:
    from tir_env.tools.classical.disk_radius import rounded_to_8_bits

    photo = _scene(64, 64, 4)  # u8_to_batch: on the 1/255 grid
    assert rounded_to_8_bits(torch.cat([photo, photo + 0.3 / 255])) == [True, False]


def test_the_8_bit_fit_reads_rounded_blur_when_on_and_nothing_else_changes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from tir_env.tools.classical import disk_radius
    from tir_env.tools.classical.disk_radius import estimate_disk_radii, estimate_disk_radius

    crops = torch.cat([_scene(128, 128, s) for s in range(6)])
    blurred = (_defocus(crops, 2.0) * 255).round() / 255  # as a photo file holds it
    monkeypatch.setenv(disk_radius.ENV, "0")
    off = estimate_disk_radii(blurred)
    assert off == estimate_disk_radii_torch(blurred)
    monkeypatch.setenv(disk_radius.ENV, "1")
    on = estimate_disk_radii(blurred)
    assert sum(r == 6.0 for r in on) >= sum(r == 6.0 for r in off)
    assert all(r in (0.0, 6.0) for r in on)
    assert on == [estimate_disk_radius(x.permute(1, 2, 0).numpy()) for x in blurred]
    assert estimate_disk_radii((crops * 255).round() / 255) == [0.0] * len(crops)  # sharp
    floats = _defocus(crops, 2.0)  # off the grid: read as before
    assert estimate_disk_radii(floats) == estimate_disk_radii_torch(floats)


def test_the_tool_table_keeps_every_section_docs_tools_md_holds() -> None:
    """A rewrite of docs/tools.md by benchmarks.tool_table keeps each benchmark's section."""
    import re
    from pathlib import Path

    from benchmarks.tool_table import kept_sections

    page = (Path(__file__).resolve().parents[1] / "docs" / "tools.md").read_text()
    starts = set(re.findall(r"<!-- [a-z0-9-]+:start -->", page))
    assert starts <= {start for start, _ in kept_sections()}
