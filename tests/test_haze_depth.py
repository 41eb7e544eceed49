"""Haze with real depth: folder maps, a local depth model (tiny, offline), crops, records."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from benchmarks.cli import main
from benchmarks.evaluate import EpisodeSpec, evaluate, read_jsonl
from tir_env import data
from tir_env.degradations import depth as depth_mod
from tir_env.degradations import make_degradation, replay
from tir_env.degradations.depth import (
    DISPARITY_FLOOR,
    DepthSource,
    depth_provider,
    disparity_to_depth,
    normalise_depth,
)
from tir_env.env import TIREnv
from tir_env.errors import DepthError
from tir_env.images import batch_to_hwc, save_image, u8_to_batch

HAZE = {"A": 0.8, "beta": 1.2}


@pytest.fixture(autouse=True)
def _fresh_cache():
    depth_mod._CACHE.clear()  # every test computes its maps itself
    yield
    depth_mod._CACHE.clear()


def _noise_photo(h: int, w: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def _row_ramp(h: int, w: int, low: float = 0.2) -> np.ndarray:
    """Depth 1 at the top row, ``low`` at the bottom (the ground is near)."""
    return np.repeat(np.linspace(1.0, low, h, dtype=np.float32)[:, None], w, axis=1)


def _write_png16(path: Path, depth: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.rint(depth / depth.max() * 65535).astype(np.uint16))
    return path


def _folders(tmp_path: Path, photos: dict[str, np.ndarray], depths: dict[str, np.ndarray]):
    images, maps = tmp_path / "images", tmp_path / "depth"
    for name, photo in photos.items():
        save_image(images / f"{name}.png", photo)
    for name, depth in depths.items():
        _write_png16(maps / f"{name}.png", depth)
    maps.mkdir(parents=True, exist_ok=True)
    return images, maps


# ---------------------------------------------------------------- the haze operator


def test_given_depth_sets_the_transmission():
    depth = _row_ramp(16, 24)
    black = torch.zeros(1, 3, 16, 24)  # J = 0: I = A (1 - exp(-beta d))
    out = make_degradation("haze").with_depth(depth).apply(black, HAZE)
    expected = HAZE["A"] * (1.0 - np.exp(-HAZE["beta"] * depth))
    assert np.allclose(batch_to_hwc(out)[0][..., 1], expected, atol=1e-6)
    proxy = make_degradation("haze").apply(black, HAZE)  # the proxy is another map
    assert not torch.allclose(out, proxy, atol=1e-2)


def test_depth_follows_the_image_size_after_low_resolution():
    depth = _row_ramp(32, 32)
    small = torch.zeros(1, 3, 8, 8)
    out = make_degradation("haze").with_depth(depth).apply(small, HAZE)
    assert out.shape == small.shape
    column = batch_to_hwc(out)[0][:, 0, 0]
    assert np.all(np.diff(column) < 0)  # far (top) is hazier than near (bottom)


# ---------------------------------------------------------------- folder of maps


def test_folder_map_is_normalised_like_agenticir(tmp_path: Path):
    photo = np.zeros((40, 60, 3), np.uint8)
    raw = _row_ramp(40, 60) * 37.5  # any scale: d / max(d)
    np.save(tmp_path / "a.npy", raw)
    depth, label = depth_provider(f"folder:{tmp_path}").depth("a.png", photo)
    assert label == "folder" and depth is not None
    assert depth.shape == (40, 60) and depth.max() == pytest.approx(1.0)
    assert np.allclose(depth, raw / raw.max(), atol=1e-6)


def test_mismatched_depth_size_is_resized_to_the_photo(tmp_path: Path):
    photo = np.zeros((64, 96, 3), np.uint8)
    _write_png16(tmp_path / "a.png", _row_ramp(16, 24))  # predicted at 1/4 size, as MiO100
    depth, _ = depth_provider(f"folder:{tmp_path}").depth("a.jpg", photo)
    assert depth is not None and depth.shape == (64, 96)
    assert np.allclose(depth[8:-8], _row_ramp(64, 96)[8:-8], atol=0.02)


def test_8bit_png_and_agenticir_mat_layout(tmp_path: Path):
    from scipy.io import savemat

    photo = np.zeros((20, 30, 3), np.uint8)
    cv2.imwrite(str(tmp_path / "eight.png"), np.rint(_row_ramp(20, 30) * 200).astype(np.uint8))
    (tmp_path / "mio").mkdir()
    savemat(str(tmp_path / "mio" / "predict_depth.mat"), {"data_obj": _row_ramp(20, 30) * 9})
    provider = depth_provider(f"folder:{tmp_path}")
    for image_id in ("eight.png", "mio.png"):
        depth, _ = provider.depth(image_id, photo)
        assert depth is not None
        assert np.allclose(depth, _row_ramp(20, 30), atol=3e-3)


def test_missing_depth_file_is_a_named_error_or_the_proxy(tmp_path: Path):
    photo = np.zeros((20, 30, 3), np.uint8)
    with pytest.raises(DepthError, match=r"no depth map for image 'b.png'.*b\.npy"):
        depth_provider(f"folder:{tmp_path}").depth("b.png", photo)
    lenient = dataclasses.replace(DepthSource.parse(f"folder:{tmp_path}"), missing="proxy")
    assert depth_provider(lenient).depth("b.png", photo) == (None, "proxy")


def test_bad_specs_and_missing_folders_are_named_errors(tmp_path: Path):
    with pytest.raises(DepthError, match="folder:DIR"):
        DepthSource.parse("midas")
    with pytest.raises(ValueError, match="model:DIR"):
        TIREnv(depth="model")
    with pytest.raises(DepthError, match=f"not found: {tmp_path / 'none'}"):
        depth_provider(f"folder:{tmp_path / 'none'}")
    with pytest.raises(DepthError, match=r"lacks config\.json, preprocessor_config\.json"):
        TIREnv(depth=f"model:{tmp_path}")


def test_env_hazes_with_the_folder_map_and_names_it(tmp_path: Path):
    photo = _noise_photo(64, 64)
    images, maps = _folders(tmp_path, {"p": photo}, {"p": _row_ramp(64, 64)})
    env = TIREnv(images=str(images), patch_size=64, depth=f"folder:{maps}", metrics=("psnr",))
    _, info = env.reset(seed=3, options={"degradations": ("haze",)})
    assert info["haze_depth"] == "folder" and env.haze_depth == "folder"
    whole, _ = depth_provider(f"folder:{maps}").depth("p.png", photo)
    expected = replay(u8_to_batch(photo), _applied(info), whole)
    assert np.abs(env.input_image().astype(int) - _u8(expected)).max() <= 1
    _, info = env.reset(seed=3, options={"degradations": ("noise",)})
    assert info["haze_depth"] is None  # no haze, no depth source


# ---------------------------------------------------------------- crops


def test_patch_depth_is_the_window_of_the_whole_photo_map(tmp_path: Path):
    photo = _noise_photo(96, 80, seed=1)
    images, maps = _folders(tmp_path, {"p": photo}, {"p": _row_ramp(96, 80, low=0.1)})
    env = TIREnv(images=str(images), patch_size=32, depth=f"folder:{maps}", metrics=("psnr",))
    whole, _ = depth_provider(f"folder:{maps}").depth("p.png", photo)
    assert whole is not None
    for seed in range(3):
        _, info = env.reset(seed=seed, options={"degradations": ("haze",)})
        clean = env.clean_image()
        top, left = _locate(photo, clean)
        patch_depth = whole[top : top + 32, left : left + 32]
        applied = _applied(info)
        got = env.input_image().astype(int)
        expected = _u8(replay(u8_to_batch(clean), applied, patch_depth))
        assert np.abs(got - expected).max() <= 1
        # Predicting or re-normalising on the crop would haze it differently.
        renormalised = _u8(replay(u8_to_batch(clean), applied, patch_depth / patch_depth.max()))
        assert np.abs(got - renormalised).max() > 2


@given(
    h=st.integers(8, 70),
    w=st.integers(8, 70),
    size=st.sampled_from([16, 32]),
    seed=st.integers(0, 2**16),
)
def test_crop_window_cuts_photo_and_depth_alike(h, w, size, seed):
    photo = _noise_photo(h, w, seed)
    depth = np.linspace(0.0, 1.0, h * w, dtype=np.float32).reshape(h, w)
    window = data.patch_window(photo.shape, size, np.random.default_rng(seed))
    assert np.array_equal(
        data.crop(photo, window), data.random_patch(photo, size, np.random.default_rng(seed))
    )
    cut = data.crop(depth, window)
    assert cut.shape == (size, size) and cut.min() >= 0.0 and cut.max() <= 1.0
    if window.scaled == (h, w):
        assert np.array_equal(
            cut, depth[window.top : window.top + size, window.left : window.left + size]
        )


def _locate(photo: np.ndarray, patch: np.ndarray) -> tuple[int, int]:
    """Where a crop of a noise photo lies in it (unique for random pixels)."""
    size = patch.shape[0]
    for top in range(photo.shape[0] - size + 1):
        for left in range(photo.shape[1] - size + 1):
            if np.array_equal(photo[top : top + size, left : left + size], patch):
                return top, left
    raise AssertionError("patch not found in the photo")


def _applied(info: dict) -> list[tuple[str, dict[str, float]]]:
    return list(zip(info["degradations"], info["degradation_params"], strict=True))


def _u8(batch: torch.Tensor) -> np.ndarray:
    return np.clip(np.rint(batch_to_hwc(batch)[0] * 255), 0, 255).astype(int)


# ---------------------------------------------------------------- depth model (tiny, offline)


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    """A random Depth Anything with a DINOv2 backbone of 16 channels, saved like a checkpoint."""
    from transformers import (
        DepthAnythingConfig,
        DepthAnythingForDepthEstimation,
        Dinov2Config,
        DPTImageProcessor,
    )

    folder = tmp_path_factory.mktemp("depth") / "tiny-depth-anything"
    torch.manual_seed(0)
    # A dict: transformers' type stubs do not list the backbone's keyword arguments.
    sizes: dict[str, Any] = dict(
        hidden_size=16,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=32,
        patch_size=14,
        image_size=56,
        out_features=["stage1", "stage2"],
        reshape_hidden_states=False,
    )
    backbone = Dinov2Config(**sizes)
    config = DepthAnythingConfig(
        backbone_config=backbone,
        reassemble_hidden_size=16,
        neck_hidden_sizes=[8, 16],
        reassemble_factors=[2, 1],
        fusion_hidden_size=8,
        head_hidden_size=8,
        patch_size=14,
    )
    DepthAnythingForDepthEstimation(config).eval().save_pretrained(folder)
    processor = DPTImageProcessor(
        size={"height": 56, "width": 56}, keep_aspect_ratio=True, ensure_multiple_of=14
    )
    processor.save_pretrained(folder)
    return folder


def test_model_depth_runs_offline_on_the_whole_photo(tiny_model: Path):
    from transformers import AutoImageProcessor, AutoModelForDepthEstimation

    photo = _noise_photo(50, 70)
    depth, label = depth_provider(f"model:{tiny_model}").depth("x.png", photo)
    assert label == "model:tiny-depth-anything" and depth is not None
    assert depth.shape == (50, 70) and depth.dtype == np.float32
    assert depth.min() >= DISPARITY_FLOOR - 1e-6 and depth.max() == pytest.approx(1.0)
    # The same as running the model by hand and inverting its relative disparity.
    model = AutoModelForDepthEstimation.from_pretrained(str(tiny_model), local_files_only=True)
    processor = AutoImageProcessor.from_pretrained(str(tiny_model), local_files_only=True)
    with torch.no_grad():
        pred = model(**processor(images=photo, return_tensors="pt")).predicted_depth
    disparity = torch.nn.functional.interpolate(pred[:, None], (50, 70), mode="bicubic")[0, 0]
    assert np.allclose(depth, disparity_to_depth(disparity.numpy()), atol=1e-5)


def test_model_depth_is_deterministic_cached_and_named_in_the_env(tiny_model: Path, tmp_path):
    photo = _noise_photo(64, 64, seed=2)
    images, _ = _folders(tmp_path, {"p": photo}, {})
    cache = tmp_path / "cache"
    source = dataclasses.replace(DepthSource.parse(f"model:{tiny_model}"), cache_dir=cache)
    inputs = []
    for _ in range(2):
        depth_mod._CACHE.clear()
        env = TIREnv(images=str(images), patch_size=32, depth=source, metrics=("psnr",))
        _, info = env.reset(seed=5, options={"degradations": ("rain", "haze")})
        assert info["haze_depth"] == "model:tiny-depth-anything"
        inputs.append(env.input_image())
    assert np.array_equal(inputs[0], inputs[1])
    (saved,) = cache.glob("tiny-depth-anything-*.npy")  # keyed by model and photo hash
    depth, _ = depth_provider(source).depth("p.png", photo)
    assert depth is not None and np.array_equal(np.load(saved), depth)


def test_metric_checkpoints_are_depth_already(tiny_model: Path, tmp_path: Path):
    import json
    import shutil

    metric = tmp_path / "tiny-metric"
    shutil.copytree(tiny_model, metric)
    config = json.loads((metric / "config.json").read_text())
    (metric / "config.json").write_text(json.dumps({**config, "depth_estimation_type": "metric"}))
    photo = _noise_photo(30, 40)
    depth, _ = depth_provider(f"model:{metric}").depth("x.png", photo)
    relative, _ = depth_provider(f"model:{tiny_model}").depth("x.png", photo)
    assert depth is not None and relative is not None and depth.max() == pytest.approx(1.0)
    assert not np.allclose(depth, relative, atol=1e-3)  # not inverted: sigmoid depth / max
    assert depth.min() > 0.5  # a sigmoid head of a random net predicts about max_depth / 2


def test_missing_model_weights_name_the_files(tiny_model: Path, tmp_path: Path):
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_bytes((tiny_model / "config.json").read_bytes())
    with pytest.raises(DepthError, match=r"preprocessor_config\.json, model\.safetensors"):
        depth_provider(f"model:{broken}")


# ---------------------------------------------------------------- records and CLI


def test_records_and_bench_name_the_depth_source(tmp_path: Path, capsys):
    photo = _noise_photo(64, 64, seed=3)
    images, maps = _folders(tmp_path, {"p": photo}, {"p": _row_ramp(64, 64)})
    kwargs = dict(images=str(images), patch_size=32, metrics=("psnr",), max_steps=1)
    specs = [EpisodeSpec("p.png", ("haze", "noise"), 0), EpisodeSpec("p.png", ("noise",), 1)]
    hazy, plain = evaluate("random", specs, {**kwargs, "depth": f"folder:{maps}"}, progress=False)
    assert hazy["haze_depth"] == "folder" and "haze_depth" not in plain
    (proxy, _) = evaluate("random", specs, kwargs, progress=False)
    assert proxy["haze_depth"] == "proxy"
    assert proxy["metrics_input"]["psnr"] != hazy["metrics_input"]["psnr"]

    out = tmp_path / "bench"
    argv = ["bench", "mio-b", "--agents", "random", "--images", str(images), "--out", str(out)]
    assert main([*argv, "--depth", f"folder:{maps}"]) == 0
    records = read_jsonl(out / "mio-b__random.jsonl")
    assert [r.get("haze_depth") for r in records if "haze" in r["degradations"]] == ["folder"]
    capsys.readouterr()
    argv[-1] = str(tmp_path / "bench2")  # a new run: the first folder resumes only its own
    assert main([*argv, "--depth", f"model:{tmp_path / 'nowhere'}"]) == 2
    assert "depth model folder not found" in capsys.readouterr().err


# ---------------------------------------------------------------- conventions


@given(st.lists(st.floats(0.0, 100.0), min_size=2, max_size=30))
def test_disparity_inversion_is_monotone_and_bounded(values):
    s = np.array(values)
    d = disparity_to_depth(s)
    assert np.all((d >= DISPARITY_FLOOR - 1e-7) & (d <= 1.0))
    order = np.argsort(s)
    assert np.all(np.diff(d[order]) <= 1e-7)  # nearer (larger disparity) is never farther
    if s.max() > 0:
        assert d[np.argmax(s)] == pytest.approx(DISPARITY_FLOOR)


def test_normalise_rejects_maps_without_depth():
    with pytest.raises(DepthError, match="no positive value"):
        normalise_depth(np.zeros((4, 4)), (4, 4))
    with pytest.raises(DepthError, match="2-D"):
        normalise_depth(np.zeros((4, 4, 3)), (4, 4))


def test_proxy_stays_the_default():
    env = TIREnv(images="test", patch_size=32, metrics=("psnr",))
    _, info = env.reset(seed=0, options={"degradations": ("haze",)})
    assert info["haze_depth"] == "proxy"


if __name__ == "__main__":
    pytest.main([__file__, "-q"])
