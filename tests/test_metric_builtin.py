"""A metric is a built-in when TIR's own modules registered its name, whatever its class.

Built-in metrics handle their edge cases themselves, so their scores skip the NaN/Inf and
exception guard of :meth:`Metric.__call__`; a metric registered by user code is guarded, also
when it reuses one of TIR's classes (a ``MetricSpec`` of the fast PSNR or of the pyiqa
adapter), so a NaN score cannot flow into a reward unnamed.
"""

from __future__ import annotations

import importlib.util
import math
import threading
from collections.abc import Callable, Iterator

import pytest
import torch

from tir_env.errors import MetricError
from tir_env.metrics import METRICS, MetricInfo, build_metric, make_metric, register_metric
from tir_env.metrics.fast import PSNR
from tir_env.metrics.niqe import NIQE_PARAMS
from tir_env.metrics.pyiqa_backend import MetricSpec, PyiqaMetric

#: Built-ins of every backend: fast torch, in-repo fits, learned in this repo, pyiqa.
BUILTINS = ("psnr", "ssim", "ms_ssim", "niqe", "niqe_pyiqa", "tirqa", "lpips", "brisque")

Register = Callable[[MetricSpec], str]


def _info(name: str, *, reference: bool = True) -> MetricInfo:
    return MetricInfo(
        name=name,
        needs_reference=reference,
        lower_better=not reference,
        range=(0.0, 50.0),
        backend="tir" if reference else "pyiqa",
    )


def _nan(batch: torch.Tensor, reference: torch.Tensor | None) -> torch.Tensor:
    return torch.full((batch.shape[0],), math.nan)


@pytest.fixture
def user_metric() -> Iterator[Register]:
    """``register(spec)``: register a user's spec (as a script would); removed afterwards."""
    names: list[str] = []

    def register(spec: MetricSpec) -> str:
        register_metric(spec)
        names.append(spec.info.name)
        return spec.info.name

    yield register
    for name in names:
        METRICS.remove(name)
    make_metric.cache_clear()


@pytest.mark.parametrize("name", BUILTINS)
def test_the_builtin_metrics_are_builtins(name: str) -> None:
    assert METRICS.is_builtin(name)


def test_a_users_spec_of_a_builtin_class_is_not_a_builtin(user_metric: Register) -> None:
    name = user_metric(MetricSpec(_info("test_user_psnr"), PSNR))
    assert not METRICS.is_builtin(name)
    assert METRICS.is_builtin("psnr")  # the class it reuses stays a built-in's


def test_a_users_spec_of_a_builtin_class_returning_nan_is_named(user_metric: Register) -> None:
    name = user_metric(MetricSpec(_info("test_user_psnr"), PSNR))
    batch, reference = torch.rand(2, 3, 16, 16), torch.rand(2, 3, 16, 16)
    mine, builtin = build_metric(name), build_metric("psnr")
    mine.compute = builtin.compute = _nan  # type: ignore[method-assign]
    with pytest.raises(MetricError, match=rf"metric '{name}' returned nan for image 0"):
        mine(batch, reference)
    # the same class under the built-in's own name is trusted (it caps its edge cases): the
    # name's registration decides, not the class
    assert torch.isnan(builtin(batch, reference)).all()


@pytest.mark.skipif(importlib.util.find_spec("pyiqa") is None, reason="needs pyiqa")
@pytest.mark.filterwarnings("ignore:cov")  # pyiqa's own, on the flat image's statistics
def test_a_users_pyiqa_spec_that_fails_on_a_flat_image_is_named(user_metric: Register) -> None:
    """pyiqa's NIQE is undefined on a flat image; only the built-in ``niqe_pyiqa`` handles it."""
    spec = MetricSpec(
        _info("test_user_niqe", reference=False),
        PyiqaMetric,
        min_size=96,
        pyiqa_name="niqe",
        options={"pretrained_model_path": str(NIQE_PARAMS)},
    )
    name = user_metric(spec)
    flat = torch.full((1, 3, 96, 96), 0.5)
    with pytest.raises(MetricError, match=rf"metric '{name}' "):
        make_metric(name)(flat)
    assert torch.isfinite(make_metric("niqe_pyiqa")(flat)).all()


def test_a_metric_registered_from_a_thread_is_not_a_builtin(user_metric: Register) -> None:
    """No module is importing there: it used to fall back to where its class is defined."""
    spec = MetricSpec(_info("test_thread_psnr"), PSNR)
    worker = threading.Thread(target=user_metric, args=(spec,))
    worker.start()
    worker.join()
    assert "test_thread_psnr" in METRICS.names()
    assert not METRICS.is_builtin("test_thread_psnr")
