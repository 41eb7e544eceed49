"""The built-in metrics: one :class:`MetricSpec` each, registered in this order.

Imported on the first lookup of the metric registry (with every module of this package);
importing it does not import pyiqa. Directions and ranges follow pyiqa's ``DEFAULT_CONFIGS``
(``lower_better``, ``score_range`` with its ``~`` dropped; NIQE's range is that of the in-repo
fit); a test checks the directions against pyiqa. ``cost`` is the rough time of one call on
one 128x128 image on one CPU core relative to PSNR (0.3 ms with input checks): measured for
the weight-free metrics, scaled from the 256x256 timings of notes/pyiqa.md for the learned
ones. ``step_scale`` (the second argument of ``_info``) is the typical improvement of one
useful tool call, the rewards' scale for the metric.

Names: ``psnr``, ``ssim`` and ``ms_ssim`` are the fast torch versions (:mod:`.fast`);
``psnr_pyiqa``, ``ssim_pyiqa``, ``ms_ssim_pyiqa`` and ``niqe_pyiqa`` are pyiqa's reference
implementations (``niqe`` is the torch version in :mod:`.niqe`).
Every other name is pyiqa's own name for the metric.
"""

from __future__ import annotations

from collections.abc import Callable

from tir_env.metrics.base import MetricInfo, register_metric
from tir_env.metrics.fast import MSSSIM, PSNR, PSNRY, SSIM, SSIMY
from tir_env.metrics.niqe import NIQE_PARAMS, NIQEMetric, NIQEPyiqaMetric, fit_photos
from tir_env.metrics.pyiqa_backend import MetricSpec, PyiqaMetric
from tir_env.metrics.tirqa import TIRQAMetric
from tir_env.metrics.weights import REQUIRED_WEIGHTS


def _info(
    name: str,
    step_scale: float,
    fr: bool,
    lower: bool,
    rng: tuple[float, float],
    backend: str,
    cost: float,
    description: str,
    fit: Callable[[], str] | None = None,
) -> MetricInfo:
    return MetricInfo(
        name=name,
        needs_reference=fr,
        lower_better=lower,
        range=(float(rng[0]), float(rng[1])),
        backend=backend,  # type: ignore[arg-type]
        needs_weights=name in REQUIRED_WEIGHTS,
        cost=cost,
        description=description,
        step_scale=step_scale,
        fit=fit,
    )


FR, NR = True, False
HIGHER, LOWER = False, True

# Fast torch versions of pyiqa's psnr/ssim/ms_ssim (the registry defaults).
register_metric(
    MetricSpec(
        _info("psnr", 1.0, FR, HIGHER, (0, 40), "tir", 1, "PSNR on RGB, dB (= pyiqa psnr)"), PSNR
    )
)
register_metric(
    MetricSpec(
        _info("ssim", 0.03, FR, HIGHER, (0, 1), "tir", 4, "SSIM on YIQ luma (= pyiqa ssim)"),
        SSIM,
        min_size=11,
    )
)
register_metric(
    MetricSpec(
        _info(
            "ms_ssim",
            0.02,
            FR,
            HIGHER,
            (0, 1),
            "tir",
            8,
            "MS-SSIM on YIQ luma (= pyiqa from 161 px)",
        ),
        MSSSIM,
        min_size=11,
    )
)
# BasicSR's Y-channel convention (4KAgent, most SR papers), as extra columns.
register_metric(
    MetricSpec(
        _info("psnr_y", 1.0, FR, HIGHER, (0, 40), "tir", 1, "PSNR on BT.601 Y, dB (= BasicSR, Y)"),
        PSNRY,
    )
)
register_metric(
    MetricSpec(
        _info("ssim_y", 1.0, FR, HIGHER, (0, 1), "tir", 4, "SSIM on BT.601 Y (= BasicSR, Y)"),
        SSIMY,
        min_size=11,
    )
)
# pyiqa's reference implementations of the same three.
register_metric(
    MetricSpec(
        _info("psnr_pyiqa", 1.0, FR, HIGHER, (0, 40), "pyiqa", 1, "pyiqa psnr (reference)"),
        PyiqaMetric,
        pyiqa_name="psnr",
    )
)
register_metric(
    MetricSpec(
        _info("ssim_pyiqa", 1.0, FR, HIGHER, (0, 1), "pyiqa", 45, "pyiqa ssim (reference)"),
        PyiqaMetric,
        min_size=11,
        pyiqa_name="ssim",
    )
)
register_metric(
    MetricSpec(
        _info("ms_ssim_pyiqa", 1.0, FR, HIGHER, (0, 1), "pyiqa", 50, "pyiqa ms_ssim (reference)"),
        PyiqaMetric,
        min_size=161,
        pyiqa_name="ms_ssim",
    )
)
# Other weight-free full-reference metrics.
register_metric(
    MetricSpec(
        _info("fsim", 0.02, FR, HIGHER, (0, 1), "pyiqa", 60, "feature similarity, chromatic"),
        PyiqaMetric,
        min_size=8,
    )
)
register_metric(
    MetricSpec(
        _info(
            "gmsd", 0.01, FR, LOWER, (0, 1), "pyiqa", 3, "gradient magnitude similarity deviation"
        ),
        PyiqaMetric,
        min_size=8,
    )
)
register_metric(
    MetricSpec(
        _info("vif", 0.03, FR, HIGHER, (0, 1), "pyiqa", 120, "visual information fidelity"),
        PyiqaMetric,
        min_size=33,
    )
)
register_metric(
    MetricSpec(
        _info(
            "nlpd", 0.02, FR, LOWER, (0, 1), "pyiqa", 20, "normalised Laplacian pyramid distance"
        ),
        PyiqaMetric,
        min_size=8,
    )
)
# No-reference NIQE with parameters fit in this repo (tir_env/assets): batched torch (block
# features from OpenCV + numpy on a CPU), and
# pyiqa's implementation with the same file as its reference.
register_metric(
    MetricSpec(
        _info(
            "niqe",
            0.5,
            NR,
            LOWER,
            (0, 50),
            "tir",
            6,
            "NIQE, model fit on the corpus' train photos",
            fit=fit_photos,
        ),
        NIQEMetric,
        min_size=96,
        options={"pretrained_model_path": str(NIQE_PARAMS)},
    )
)
register_metric(
    MetricSpec(
        _info(
            "niqe_pyiqa",
            0.5,
            NR,
            LOWER,
            (0, 50),
            "pyiqa",
            35,
            "pyiqa niqe, same fit (reference)",
            fit=fit_photos,
        ),
        NIQEPyiqaMetric,
        min_size=96,
        pyiqa_name="niqe",
        options={"pretrained_model_path": str(NIQE_PARAMS)},
    )
)
# Learned in this repo: the perception network's quality head (weights ship).
register_metric(
    MetricSpec(
        _info(
            "tirqa", 0.5, NR, HIGHER, (10, 45), "tir", 20, "predicted PSNR to the unseen clean, dB"
        ),
        TIRQAMetric,
        min_size=32,
    )
)
# Learned metrics: weight files from TIR_WEIGHTS_DIR (tir_env/metrics/weights.py).
register_metric(
    MetricSpec(
        _info("lpips", 0.03, FR, LOWER, (0, 1), "pyiqa", 25, "LPIPS v0.1, AlexNet"), PyiqaMetric
    )
)
register_metric(
    MetricSpec(_info("dists", 0.02, FR, LOWER, (0, 1), "pyiqa", 500, "DISTS, VGG16"), PyiqaMetric)
)
register_metric(
    MetricSpec(
        _info("musiq", 2.0, NR, HIGHER, (0, 100), "pyiqa", 300, "MUSIQ, KonIQ-10k"), PyiqaMetric
    )
)
register_metric(
    MetricSpec(
        _info("clipiqa", 0.03, NR, HIGHER, (0, 1), "pyiqa", 1500, "CLIP-IQA, RN50"), PyiqaMetric
    )
)
register_metric(
    MetricSpec(
        _info("topiq_nr", 0.03, NR, HIGHER, (0, 1), "pyiqa", 150, "TOPIQ-NR, KonIQ-10k"),
        PyiqaMetric,
        options={"backbone_pretrain": False},  # the checkpoint holds the backbone
    )
)
register_metric(
    MetricSpec(
        _info(
            "maniqa", 0.03, NR, HIGHER, (0, 1), "pyiqa", 100000, "MANIQA, KonIQ-10k (slow on CPU)"
        ),
        PyiqaMetric,
    )
)
register_metric(
    MetricSpec(
        _info("brisque", 3.0, NR, LOWER, (0, 150), "pyiqa", 15, "BRISQUE (SVM)"), PyiqaMetric
    )
)
