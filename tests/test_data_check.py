"""``tir data check``: every unusable image of a folder listed at once."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from benchmarks.cli import main
from tir_env.images import save_image


def _folder(tmp_path: Path, bad: bool) -> Path:
    folder = tmp_path / "photos"
    rng = np.random.default_rng(0)
    save_image(folder / "good.png", rng.integers(0, 256, (40, 48, 3), dtype=np.uint8))
    if bad:
        (folder / "truncated.png").write_bytes((folder / "good.png").read_bytes()[:60])
        save_image(folder / "tiny.png", np.zeros((1, 1, 3), np.uint8))
    return folder


def test_a_clean_folder_passes(tmp_path, capsys) -> None:
    assert main(["data", "check", str(_folder(tmp_path, bad=False))]) == 0
    assert "1/1 images usable" in capsys.readouterr().out


def test_every_unusable_image_is_listed_with_why(tmp_path, capsys) -> None:
    assert main(["data", "check", str(_folder(tmp_path, bad=True))]) == 1
    out = capsys.readouterr().out
    assert "truncated.png: ImageReadError" in out and "tiny.png: ImageTooSmallError" in out
    assert "1/3 images usable" in out and "good.png:" not in out


def test_a_missing_folder_is_a_usage_error(tmp_path, capsys) -> None:
    assert main(["data", "check", str(tmp_path / "nowhere")]) == 2
    assert "image folder not found" in capsys.readouterr().err


def test_the_env_error_points_at_the_check(tmp_path) -> None:
    import pytest

    from tir_env import data
    from tir_env.errors import ImageError

    folder = _folder(tmp_path, bad=True)
    with pytest.raises(ImageError, match="tir data check"):
        data.source(str(folder)).load("tiny.png")
