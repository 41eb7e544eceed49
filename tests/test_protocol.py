"""Protocol fidelity: listed order, whole images, given pairs, metric conventions."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from benchmarks.cli import main
from benchmarks.leaderboard import leaderboard_rows, setting_note
from benchmarks.suites import SUITES, get_suite
from tir_env.degradations import degrade, ordered, replay
from tir_env.env import TIREnv
from tir_env.errors import DataError, UnknownNameError
from tir_env.images import batch_to_u8, save_image, u8_to_batch
from tir_env.metrics import make_metric
from tir_env.pairs import find_pairs

torch.set_num_threads(1)
LISTED = ("rain", "noise", "low_resolution")


def test_listed_order_is_what_the_record_replays() -> None:
    env = TIREnv(images="test", patch_size=32, degradation_order="listed", combos="mio-c")
    _, info = env.reset(seed=3, options={"degradations": LISTED})
    assert info["degradations"] == list(LISTED) and info["degradation_order"] == "listed"
    applied = list(zip(info["degradations"], info["degradation_params"], strict=True))
    replayed = batch_to_u8(replay(u8_to_batch(env.clean_image()), applied))
    np.testing.assert_array_equal(replayed, env.input_image())


def test_physical_order_sorts_and_differs_from_listed() -> None:
    clean = u8_to_batch(np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8))
    listed, applied = degrade(clean, LISTED, np.random.default_rng(1), order="listed")
    physical, applied_p = degrade(clean, LISTED, np.random.default_rng(1), order="physical")
    assert [n for n, _ in applied] == list(LISTED)
    assert [n for n, _ in applied_p] == ["rain", "low_resolution", "noise"]
    assert not torch.equal(listed, physical)


@given(st.permutations(list(LISTED)))
def test_ordered_listed_keeps_any_order(names: list[str]) -> None:
    assert ordered(names, "listed") == names
    assert ordered(names, "physical") == ordered(sorted(names), "physical")


def test_unknown_order_is_refused() -> None:
    with pytest.raises(ValueError, match="degradation order"):
        ordered(LISTED, "sorted")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="degradation_order"):
        TIREnv(degradation_order="random")  # type: ignore[arg-type]


def test_mio_suites_are_version_2_in_listed_order_with_y_columns() -> None:
    for name in ("mio-a", "mio-b", "mio-c"):
        suite = SUITES[name]
        assert (suite.version, suite.order) == ("2", "listed")
        assert {"psnr_y", "ssim_y"} <= set(suite.metrics)
        assert suite.env_kwargs()["degradation_order"] == "listed"
    assert SUITES["ood-d2"].order == "physical"


@pytest.mark.parametrize(("name", "size"), [("mio-a@full", None), ("mio-b@256", 256)])
def test_suite_sizes_from_the_name(name: str, size: int | None) -> None:
    suite = get_suite(name)
    assert suite.name == name and suite.patch_size == size
    assert suite.env_kwargs()["patch_size"] == size


@pytest.mark.parametrize("name", ["mio-a@7", "mio-a@huge", "mio-z@full"])
def test_bad_suite_sizes_are_named_errors(name: str) -> None:
    with pytest.raises(UnknownNameError):
        get_suite(name)


def _whole_bench(tmp_path: Path, size: tuple[int, int]) -> list[dict[str, object]]:
    """``tir bench mio-b --whole`` on one photo resized to ``size`` (W, H); its records."""
    photos = tmp_path / "photos"
    save_image(photos / "big.png", cv2.resize(_photo(), size, interpolation=cv2.INTER_AREA))
    out = tmp_path / "out"
    argv = ["bench", "mio-b", "--whole", "--images", str(photos), "--agents", "oracle"]
    assert main([*argv, "--out", str(out)]) == 0
    assert "whole photos" in (out / "leaderboard.md").read_text()
    lines = (out / "mio-b@full__oracle.jsonl").read_text().splitlines()
    return [json.loads(x) for x in lines]


def test_whole_image_bench_on_a_non_square_photo(tmp_path: Path) -> None:
    records = _whole_bench(tmp_path, (250, 183))  # trimmed to a multiple of 4: 248 x 180
    assert len(records) == 4
    assert {tuple(r["image_size"]) for r in records} == {(180, 248)}  # type: ignore[arg-type]
    assert {r["patch_size"] for r in records} == {None}
    assert {r["degradation_order"] for r in records} == {"listed"}


@pytest.mark.slow
def test_whole_image_bench_on_a_2000x1500_photo(tmp_path: Path) -> None:
    records = _whole_bench(tmp_path, (2000, 1500))
    assert {tuple(r["image_size"]) for r in records} == {(1500, 2000)}  # type: ignore[arg-type]


def _photo() -> np.ndarray:
    env = TIREnv(images="test", patch_size=None)
    env.reset(seed=0)
    return env.clean_image()


def _agenticir_pairs(root: Path, n: int = 2) -> None:
    """Write an AgenticIR-layout folder: HQ/ and LQ/d2/rain+haze/ from TIR's degradations."""
    rng = np.random.default_rng(0)
    env = TIREnv(images="test", patch_size=64)
    for i in range(n):
        env.reset(seed=i)
        clean = env.clean_image()
        degraded, _ = degrade(u8_to_batch(clean), ("rain", "haze"), rng, order="listed")
        save_image(root / "HQ" / f"img{i}.png", clean)
        save_image(root / "LQ" / "d2" / "rain+haze" / f"img{i}.png", batch_to_u8(degraded))


def test_pairs_bench_scores_the_given_inputs(tmp_path: Path) -> None:
    _agenticir_pairs(tmp_path / "mio")
    out = tmp_path / "out"
    code = main(
        [
            "bench",
            "mio-a",
            "--pairs",
            str(tmp_path / "mio"),
            "--agents",
            "oracle",
            "--out",
            str(out),
        ]
    )
    assert code == 0
    records = [json.loads(x) for x in (out / "mio-a@pairs__oracle.jsonl").read_text().splitlines()]
    assert [r["degradations"] for r in records] == [["rain", "haze"]] * 2
    psnr = make_metric("psnr")
    for r in records:
        lq = cv2.imread(r["pair"]["degraded"])[..., ::-1].copy()
        hq = cv2.imread(r["pair"]["clean"])[..., ::-1].copy()
        expected = float(psnr(u8_to_batch(lq), u8_to_batch(hq))[0])
        assert r["metrics_input"]["psnr"] == pytest.approx(expected, abs=1e-4)
        assert r["tool_executions"] >= 1  # the oracle knew the labels


def test_pairs_flat_layout_and_suite_filter(tmp_path: Path) -> None:
    img = np.full((16, 16, 3), 100, np.uint8)
    save_image(tmp_path / "clean" / "a.png", img)
    save_image(tmp_path / "degraded" / "a.png", img)
    pairs = find_pairs(tmp_path)
    assert [(p.name, p.degradations) for p in pairs] == [("a", ())]


@pytest.mark.parametrize("fault", ["unpaired", "size", "unknown_combo", "no_clean_dir", "empty"])
def test_pairs_faults_are_named_errors(tmp_path: Path, fault: str) -> None:
    root = tmp_path / "p"
    _agenticir_pairs(root, n=1)
    lq = root / "LQ" / "d2" / "rain+haze"
    if fault == "unpaired":
        save_image(lq / "stray.png", np.zeros((64, 64, 3), np.uint8))
    elif fault == "size":
        save_image(lq / "img0.png", np.zeros((50, 64, 3), np.uint8))
    elif fault == "unknown_combo":
        save_image(root / "LQ" / "d2" / "rain+snow" / "img0.png", np.zeros((64, 64, 3), np.uint8))
    elif fault == "no_clean_dir":
        (root / "HQ").rename(root / "originals")
    else:
        (lq / "img0.png").unlink()
    if fault == "size":  # found fine; refused when the sizes are compared
        assert main(["bench", "mio-a", "--pairs", str(root), "--out", str(tmp_path / "o")]) == 2
        return
    with pytest.raises(DataError):
        find_pairs(root)


def test_pairs_of_another_suite_are_refused(tmp_path: Path) -> None:
    _agenticir_pairs(tmp_path / "p", n=1)
    code = main(["bench", "mio-c", "--pairs", str(tmp_path / "p"), "--out", str(tmp_path / "o")])
    assert code == 2


def _basicsr_y(img: np.ndarray) -> np.ndarray:
    """BasicSR's ``to_y_channel`` of an RGB uint8 image, on [0, 255] (float64)."""
    return img.astype(np.float64) / 255.0 @ np.array([65.481, 128.553, 24.966]) + 16.0


def _basicsr_ssim(a: np.ndarray, b: np.ndarray) -> float:
    """BasicSR's ``_ssim`` on [0, 255] images (cv2 Gaussian window, valid region)."""
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    k = cv2.getGaussianKernel(11, 1.5)
    w = np.outer(k, k.T)

    def f(x: np.ndarray) -> np.ndarray:
        return cv2.filter2D(x, -1, w)[5:-5, 5:-5]

    mu1, mu2 = f(a), f(b)
    s1, s2, s12 = f(a * a) - mu1**2, f(b * b) - mu2**2, f(a * b) - mu1 * mu2
    ssim_map = ((2 * mu1 * mu2 + c1) * (2 * s12 + c2)) / ((mu1**2 + mu2**2 + c1) * (s1 + s2 + c2))
    return float(ssim_map.mean())


@settings(max_examples=15, deadline=None)
@given(st.integers(0, 2**31 - 1), st.sampled_from([(24, 24), (40, 56)]))
def test_y_channel_metrics_match_basicsr(seed: int, size: tuple[int, int]) -> None:
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 256, (*size, 3), dtype=np.uint8)
    noise = rng.normal(0, rng.uniform(2, 40), a.shape)
    b = np.clip(a + noise, 0, 255).astype(np.uint8)
    ya, yb = _basicsr_y(a), _basicsr_y(b)
    want_psnr = 10 * np.log10(255.0**2 / np.mean((ya - yb) ** 2))
    got_psnr = float(make_metric("psnr_y")(u8_to_batch(b), u8_to_batch(a))[0])
    assert got_psnr == pytest.approx(want_psnr, abs=1e-3)
    got_ssim = float(make_metric("ssim_y")(u8_to_batch(b), u8_to_batch(a))[0])
    assert got_ssim == pytest.approx(_basicsr_ssim(yb, ya), abs=1e-4)


def test_leaderboard_splits_versions_and_names_conventions() -> None:
    base = {"agent": "x", "actions": [], "tool_executions": 0, "wall_time_s": 0.0}
    metrics = {"metrics_input": {"psnr": 1.0}, "metrics_output": {"psnr": 2.0}}
    records = [
        {**base, **metrics, "suite": "mio-a", "suite_version": "1"},
        {**base, **metrics, "suite": "mio-a", "suite_version": "2", "degradation_order": "listed"},
    ]
    tables = leaderboard_rows(records)
    assert sorted(tables) == ["mio-a v1", "mio-a v2"]
    note = setting_note(records[1:], tables["mio-a v2"])
    assert "listed order" in note and "PSNR on RGB" in note
