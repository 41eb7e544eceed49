"""Test-session setup: one torch thread, offline hub, bounded hypothesis runs."""

from __future__ import annotations

import importlib
import os
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from hypothesis import HealthCheck, settings  # noqa: E402

if TYPE_CHECKING:
    from benchmarks.fake_openai import FakeOpenAI

torch.set_num_threads(1)

settings.register_profile(
    "tir",
    deadline=None,
    max_examples=25,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
settings.load_profile("tir")


def _tiny_dataset(factory: pytest.TempPathFactory, **settings: Any) -> Path:
    """A tiny expert dataset (``tir experts collect``) on two bundled photos, 32 px."""
    from agents import experts
    from tir_env import data
    from tir_env.images import save_image

    root = factory.mktemp("experts")
    for name in ("chelsea", "coffee"):
        save_image(root / "photos" / f"{name}.png", data.bundled("test").load(name))
    base: dict[str, Any] = dict(
        out=str(root / "ds"),
        images=str(root / "photos"),
        protocols=("single", "mio-a"),
        patch_size=32,
        num_envs=2,
        progress=False,
    )
    experts.collect(experts.CollectConfig(**{**base, **settings}))
    return root / "ds"


@pytest.fixture(scope="session")
def expert_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny ``exhaustive-ref`` dataset: 4 episodes, 3 steps."""
    return _tiny_dataset(tmp_path_factory, max_steps=3, shard_size=4, limit=4)


@pytest.fixture(scope="session")
def oracle_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny ``oracle`` dataset (``--expert oracle``): 6 episodes, 5 steps, shards of 3."""
    return _tiny_dataset(tmp_path_factory, max_steps=5, shard_size=3, limit=6, expert="oracle")


@pytest.fixture(scope="session")
def tiny_ppo_args() -> list[str]:
    """``tir train ppo`` options of a seconds-long run on 32 px bundled patches (no ``--out``)."""
    return [
        "--total-timesteps", "16", "--n-envs", "2", "--n-steps", "8", "--batch-size", "8",
        "--n-epochs", "1", "--images", "test", "--patch-size", "32", "--obs-size", "32",
        "--max-steps", "3", "--history-len", "3", "--no-verbose", "--pool-workers", "1",
    ]  # fmt: skip


@pytest.fixture(scope="session")
def test_patches() -> list[np.ndarray]:
    """Centre 64x64 crops of the bundled test photos (uint8 HWC)."""
    from tir_env import data

    src = data.bundled("test")
    return [data.center_patch(src.load(i), 64) for i in src.ids]


@pytest.fixture(scope="session")
def test_batches(test_patches: list[np.ndarray]) -> list[torch.Tensor]:
    """The same crops as float32 1x3x64x64 batches."""
    from tir_env.images import u8_to_batch

    return [u8_to_batch(p) for p in test_patches]


@pytest.fixture
def openai_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeOpenAI]:
    """The scripted OpenAI-compatible server of :mod:`benchmarks.fake_openai`, on 127.0.0.1.

    ``$TIR_API_KEY`` is :data:`~benchmarks.fake_openai.TEST_API_KEY`, and loopback bypasses
    any proxy.
    """
    from benchmarks.fake_openai import TEST_API_KEY, FakeOpenAI

    monkeypatch.setenv("TIR_API_KEY", TEST_API_KEY)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    monkeypatch.setenv("no_proxy", "127.0.0.1")
    server = FakeOpenAI().start()
    yield server
    server.close()


@pytest.fixture
def temp_package(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[[str, dict[str, str]], str]]:
    """``write(name, files)``: an importable package ``name`` of ``files`` (relative path ->
    source, dedented) for this test; its modules are forgotten after it."""
    written: list[str] = []

    def write(name: str, files: dict[str, str]) -> str:
        for relative, text in files.items():
            path = tmp_path / name / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(textwrap.dedent(text))
        monkeypatch.syspath_prepend(str(tmp_path))
        importlib.invalidate_caches()
        written.append(name)
        return name

    yield write
    for name in written:
        for module in [m for m in sys.modules if m.startswith(name)]:
            del sys.modules[module]


@pytest.fixture
def perceive_as(monkeypatch: pytest.MonkeyPatch) -> Callable[..., None]:
    """Make perception read the given probabilities (every other type 0) on any image.

    The thresholds stay the image's own (``perception.image_thresholds``), so what is perceived
    is decided as on a real reading.
    """
    from tir_env import perception

    def install(**probs: float) -> None:
        def reading(image, size=None, network=perception.WEIGHTS_NAME):  # noqa: ANN001, ANN202
            read = dict.fromkeys(perception.AGENTICIR_TYPES, 0.0) | probs
            return perception.Perception(
                probs=read, severity=dict(read), psnr=20.0, ssim=0.5,
                thresholds=perception.image_thresholds(image, network),
            )  # fmt: skip

        monkeypatch.setattr(perception, "perceive_photo", reading)

    return install
