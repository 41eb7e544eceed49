import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from tir_env import data
from tir_env.errors import DataError, ImageError, ToolExecutionError, UnknownNameError
from tir_env.images import (
    OUTPUT_SUFFIXES,
    batch_to_u8,
    channel_max,
    channel_min,
    check_batch,
    hstack_strip,
    image_digest,
    load_image,
    save_image,
    u8_to_batch,
)
from tir_env.registry import Registry
from tir_env.types import Param, ToolCall


def test_registry_did_you_mean_and_lazy():
    reg: Registry[object] = Registry("thing")
    reg.add("denoise", 1)
    reg.add_lazy("path_join", "os.path:join")
    import os.path

    assert reg.get("path_join") is os.path.join
    with pytest.raises(UnknownNameError, match="Did you mean 'denoise'"):
        reg.get("denoize")
    with pytest.raises(ValueError, match="already registered"):
        reg.add("denoise", 2)


def test_registry_entry_points(monkeypatch):
    from importlib import metadata

    ep = metadata.EntryPoint(name="joiner", value="os.path:join", group="tir.things")
    monkeypatch.setattr(
        metadata, "entry_points", lambda group: [ep] if group == "tir.things" else []
    )
    reg: Registry[object] = Registry("thing", entry_point_group="tir.things")
    import os.path

    assert "joiner" in reg.names()
    assert reg.get("joiner") is os.path.join


@given(arrays(np.uint8, st.tuples(st.integers(1, 20), st.integers(1, 20), st.just(3))))
def test_u8_roundtrip(image):
    batch = u8_to_batch(image)
    check_batch(batch)
    assert batch.shape == (1, 3, *image.shape[:2])
    np.testing.assert_array_equal(batch_to_u8(batch), image)


@given(
    arrays(np.uint8, st.tuples(st.integers(1, 24), st.integers(1, 24), st.just(3))),
    st.integers(1, 3),
    st.integers(1, 3),
)
def test_u8_to_batch_is_the_value_over_255(image, row_step, col_step):
    """Bit for bit the float32 value / 255, read-only and strided views of a photo included."""
    view = image[::row_step, ::col_step]
    view.flags.writeable = False
    expected = view.transpose(2, 0, 1).astype(np.float32) / np.float32(255.0)
    batch = u8_to_batch(view)
    assert batch.dtype == torch.float32 and batch.is_contiguous()
    np.testing.assert_array_equal(batch[0].numpy(), expected)


@pytest.mark.parametrize(
    "bad",
    [
        np.zeros((4, 4), np.uint8),
        np.zeros((4, 4, 3), np.float32),
        np.zeros((4, 4, 4), np.uint8),
        "x",
    ],
)
def test_u8_to_batch_rejects_bad_images(bad):
    with pytest.raises(ImageError):
        u8_to_batch(bad)


def test_check_batch_rejects_nan_and_range():
    with pytest.raises(ImageError, match="NaN"):
        check_batch(torch.full((1, 3, 2, 2), float("nan")))
    with pytest.raises(ImageError, match=r"\[0, 1\]"):
        check_batch(torch.full((1, 3, 2, 2), 2.0))


def test_per_image_tool_output_keeps_nan_and_inf_for_the_output_check():
    from tir_env.images import hwc_to_batch
    from tir_env.tools.base import check_output, tool_info

    bad = np.zeros((4, 4, 3), np.float32)
    bad[0, 0, 0], bad[1, 1, 1] = np.nan, np.inf
    batch = hwc_to_batch(bad)
    assert torch.isnan(batch).sum() == 2 and batch[0, 0, 2, 2] == 0  # the rest clipped as before
    with pytest.raises(ToolExecutionError, match="NaN or Inf"):
        check_output(tool_info("tv_denoise"), torch.zeros(1, 3, 4, 4), batch)


def test_digest_changes_with_content():
    a = torch.zeros(1, 3, 4, 4)
    b = a.clone()
    b[0, 0, 0, 0] = 1e-6
    assert image_digest(a) == image_digest(a.clone()) != image_digest(b)


def test_load_save_and_broken_file(tmp_path):
    image = np.random.default_rng(0).integers(0, 255, (9, 8, 3), dtype=np.uint8)
    path = save_image(tmp_path / "x.png", image)
    np.testing.assert_array_equal(load_image(path), image)
    (tmp_path / "broken.jpg").write_bytes(b"not an image at all")
    with pytest.raises(ImageError, match="cannot read"):
        load_image(tmp_path / "broken.jpg")
    with pytest.raises(ImageError, match="not found"):
        load_image(tmp_path / "missing.png")


def test_bundled_splits_are_disjoint_real_colour_photos():
    ids = [set(data.SPLITS[s]) for s in ("train", "val", "test")]
    assert not (ids[0] & ids[1] or ids[0] & ids[2] or ids[1] & ids[2])
    for image_id in data.all_ids():
        image = data.bundled("all").load(image_id)
        assert image.dtype == np.uint8 and image.shape[2] == 3 and min(image.shape[:2]) >= 256
        assert image.std(axis=2).mean() > 1.0, f"{image_id} is not a colour photo"


def test_folder_source_and_errors(tmp_path):
    with pytest.raises(DataError, match="not found"):
        data.folder(tmp_path / "nope")
    with pytest.raises(DataError, match="no images"):
        data.folder(tmp_path)
    save_image(tmp_path / "b.png", np.zeros((8, 9, 3), np.uint8))
    save_image(tmp_path / "sub" / "a.jpg", np.zeros((8, 9, 3), np.uint8))
    src = data.source(str(tmp_path))
    assert src.ids == ("b.png", "sub/a.jpg")
    assert src.load("b.png").shape == (8, 9, 3)
    with pytest.raises(UnknownNameError):
        src.load("c.png")


@given(st.integers(0, 2**32 - 1), st.integers(8, 64))
def test_random_patch_is_seeded(seed, size):
    photo = data.bundled("test").load("chelsea")
    a = data.random_patch(photo, size, np.random.default_rng(seed))
    b = data.random_patch(photo, size, np.random.default_rng(seed))
    assert a.shape == (size, size, 3)
    np.testing.assert_array_equal(a, b)


def test_random_patch_upscales_small_images():
    small = np.zeros((10, 20, 3), np.uint8)
    assert data.random_patch(small, 32, np.random.default_rng(0)).shape == (32, 32, 3)


def test_toolcall_hashable_and_roundtrip():
    a = ToolCall("t", {"b": 1, "a": 2.5})
    assert a == ToolCall("t", {"a": 2.5, "b": 1.0}) and hash(a) == hash(
        ToolCall("t", {"a": 2.5, "b": 1})
    )
    assert ToolCall.from_dict(a.to_dict()) == a
    with pytest.raises(ValueError):
        Param(0, 1, 2)


def test_strip():
    strip = hstack_strip(
        [np.zeros((10, 10, 3), np.uint8), np.zeros((20, 40, 3), np.uint8)], height=16
    )
    assert strip.shape == (16, 16 + 4 + 32, 3)


def test_toolcall_pickles_and_steprecord_serialises():
    import copy
    import json
    import pickle

    from tir_env.types import StepRecord

    call = ToolCall("t", {"a": 1})
    assert pickle.loads(pickle.dumps(call)) == call == copy.deepcopy(call)
    record = StepRecord(call, {"psnr": 1.0}, {"psnr": float("inf")}, 0.5)
    data = json.loads(json.dumps(record.to_dict()))
    assert (
        data["call"] == {"tool": "t", "params": {"a": 1.0}}
        and data["metrics_after"]["psnr"] is None
    )


@given(
    st.integers(0, 2 * 3 * 5 * 6 - 1),
    st.sampled_from([float("nan"), float("inf"), float("-inf")]),
)
def test_check_output_finds_any_single_non_finite_value(index: int, value: float) -> None:
    from tir_env.tools.base import check_output, tool_info

    out = torch.rand(2, 3, 5, 6)
    out.view(-1)[index] = value
    with pytest.raises(ToolExecutionError, match="NaN or Inf"):
        check_output(tool_info("tv_denoise"), torch.zeros(2, 3, 5, 6), out)


@settings(max_examples=40, deadline=None)
@given(
    h=st.integers(1, 9),
    w=st.integers(1, 9),
    specials=st.lists(st.sampled_from([np.nan, np.inf, -np.inf, -2.0, 3.0]), max_size=6),
    seed=st.integers(0, 2**16),
)
def test_store_hwc_converts_as_hwc_to_batch(h, w, specials, seed):
    from tir_env.images import hwc_to_batch, store_hwc

    rng = np.random.default_rng(seed)
    image = rng.uniform(-0.5, 1.5, (h, w, 3)).astype(np.float32)
    for value in specials:  # NaN and Inf must come out NaN, out-of-range values clipped
        image[rng.integers(h), rng.integers(w), rng.integers(3)] = value
    target = torch.full((3, h, w), 7.0)
    out = store_hwc(target, image)
    assert out is target
    assert torch.equal(out.isnan(), hwc_to_batch(image)[0].isnan())
    assert torch.equal(out.nan_to_num(-1.0), hwc_to_batch(image)[0].nan_to_num(-1.0))


@settings(max_examples=25, deadline=None)
@given(n=st.integers(2, 8))
def test_folds_partition_a_source_by_photo(n: int) -> None:
    base = data.source("train")
    if n > len(base):
        with pytest.raises(DataError, match="holds no images"):
            for k in range(n):
                data.source(f"train[{k}/{n}]")
        return
    folds = [data.source(f"train[{k}/{n}]").ids for k in range(n)]
    assert sorted(i for f in folds for i in f) == sorted(base.ids)
    for k, held in enumerate(folds):
        rest = data.source(f"train[~{k}/{n}]")
        assert (
            set(rest.ids) == set(base.ids) - set(held) and rest.name == f"bundled:train[~{k}/{n}]"
        )
    assert data.source(f"train[0/{n}]").load(folds[0][0]).dtype == np.uint8


def test_a_fold_out_of_range_or_empty_is_a_named_error() -> None:
    with pytest.raises(DataError, match="0 <= k < n"):
        data.source("train[4/4]")
    assert data.source("train[0/1]").ids == data.source("train").ids
    with pytest.raises(DataError, match="holds no images"):
        data.source("train[~0/1]")


@settings(max_examples=25, deadline=None)
@given(start=st.one_of(st.none(), st.integers(0, 8)), stop=st.one_of(st.none(), st.integers(0, 8)))
def test_a_span_is_the_sources_images_as_a_python_slice(
    start: int | None, stop: int | None
) -> None:
    base = data.source("train")
    spec = f"train[{'' if start is None else start}:{'' if stop is None else stop}]"
    expected = base.ids[start:stop]
    if not expected:
        with pytest.raises(DataError, match="hold none"):
            data.source(spec)
        return
    picked = data.source(spec)
    assert picked.ids == expected and picked.name == f"bundled:{spec}"
    assert picked.load(expected[0]).dtype == np.uint8


def test_a_span_of_a_fold_and_the_rest_after_a_limit() -> None:
    assert data.source("train[0/2][1:]").ids == data.source("train[0/2]").ids[1:]
    limited, rest = data.source("train").ids[:2], data.source("train[2:]").ids
    assert not set(limited) & set(rest) and len(limited) + len(rest) == len(data.source("train"))


def test_saved_images_are_as_readable_as_any_other_output(tmp_path) -> None:
    """An image a user asked for is a plain new file (the umask's mode), not a private temp."""
    import os

    from tir_env.images import save_image

    old = os.umask(0o022)
    try:
        path = save_image(tmp_path / "out.png", np.full((8, 8, 3), 7, np.uint8))
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o644
    assert [p.name for p in tmp_path.iterdir()] == ["out.png"]  # no temporary left beside it


@settings(max_examples=60, deadline=None)
@given(
    h=st.integers(1, 12), w=st.integers(1, 12), out_h=st.integers(1, 12), out_w=st.integers(1, 3)
)
def test_resize_is_one_separable_filter_whatever_the_output_width(
    h: int, w: int, out_h: int, out_w: int
) -> None:
    """Each output row comes from its own input rows, one pixel wide outputs included.

    PyTorch's antialiased 2-D resize to a width of 1 gave every row the first row's value
    (8x4 -> 2x1). The reference runs each axis alone, on a copy at least 6 pixels across
    the other axis (where that call is right), then keeps the true columns or rows.
    """
    import torch.nn.functional as F

    from tir_env.images import resize

    kw: dict = dict(mode="bicubic", align_corners=False, antialias=True)

    def rows_only(x: torch.Tensor, rows: int) -> torch.Tensor:
        wide = x.repeat(1, 1, 1, 6)
        return F.interpolate(wide, size=(rows, wide.shape[-1]), **kw)[..., : x.shape[-1]]

    x = torch.rand(1, 3, h, w, generator=torch.Generator().manual_seed(h * 1000 + w * 10 + out_h))
    tall = rows_only(x, out_h)
    reference = rows_only(tall.transpose(-1, -2), out_w).transpose(-1, -2)
    torch.testing.assert_close(resize(x, (out_h, out_w)), reference.clamp(0, 1), rtol=0, atol=1e-6)


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 3), st.integers(0, 2**32 - 1))
def test_rounding_to_8_bits_is_the_saved_files_levels(count: int, seed: int) -> None:
    from tir_env.images import round_to_8_bits

    rng = np.random.default_rng(seed)
    batch = torch.from_numpy(rng.uniform(-0.1, 1.1, (count, 3, 5, 7)).astype(np.float32))
    rounded = round_to_8_bits(batch)
    for i in range(count):
        assert torch.equal(rounded[i : i + 1], u8_to_batch(batch_to_u8(batch[i : i + 1])))


def _smooth_photo() -> np.ndarray:
    yy, xx = np.mgrid[0:48, 0:64]
    red, green = 40 + 3 * xx, 30 + 4 * yy
    return np.stack([red, green, 200 - 2 * xx + yy], axis=-1).clip(0, 255).astype(np.uint8)


@pytest.mark.parametrize("suffix", OUTPUT_SUFFIXES)
def test_save_image_keeps_the_restoration(tmp_path, suffix):
    """Lossless formats bit for bit; JPEG and WebP at quality 95 (PIL's 75 adds back blocks)."""
    photo = _smooth_photo()
    back = load_image(save_image(tmp_path / f"out{suffix}", photo))
    # PIL's defaults miss these on this photo: JPEG 1.24 levels, WebP 2.02 (quality 95: 0.49, 1.04)
    lossy_limit = {".jpg": 0.8, ".jpeg": 0.8, ".webp": 1.5}
    if suffix in lossy_limit:
        error = np.abs(back.astype(int) - photo).mean()
        assert error < lossy_limit[suffix], f"{suffix}: mean error {error:.2f} levels"
    else:
        np.testing.assert_array_equal(back, photo)


def test_save_image_jpeg_keeps_full_colour_resolution(tmp_path):
    from PIL import Image, JpegImagePlugin

    path = save_image(tmp_path / "out.jpg", _smooth_photo())
    with Image.open(path) as pil:
        assert JpegImagePlugin.get_sampling(pil) == 0  # 4:4:4, no chroma subsampling


@given(
    arrays(
        st.sampled_from([np.uint8, np.float32]),
        st.tuples(st.integers(1, 9), st.integers(1, 9), st.integers(1, 4)),
    )
)
def test_channel_min_and_max_are_numpys(image):
    np.testing.assert_array_equal(channel_min(image), image.min(axis=-1))
    np.testing.assert_array_equal(channel_max(image), image.max(axis=-1))
