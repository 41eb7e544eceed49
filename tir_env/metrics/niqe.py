"""NIQE with a pristine model fit in this repository, so it needs no downloaded file.

NIQE (Mittal, Soundararajan & Bovik, "Making a 'completely blind' image quality analyzer",
IEEE SPL 2013) describes an image by 36 natural-scene statistics per 96x96 block: at two scales
(full and half resolution), 18 features of the mean-subtracted contrast-normalised (MSCN)
coefficients ``(I - mu) / (sigma + 1)`` (7x7 Gaussian, sigma 7/6): the shape and variance of a
generalised Gaussian fit of the MSCN values, and shape, mean, left and right variance of
asymmetric generalised Gaussian fits of the products of horizontal, vertical and both diagonal
neighbours. A multivariate Gaussian (MVG) ``(mu_p, Sigma_p)`` is fit to the features of sharp
blocks of pristine images; a test image's blocks give ``(mu_d, Sigma_d)`` and

    NIQE = sqrt((mu_p - mu_d)^T ((Sigma_p + Sigma_d) / 2)^+ (mu_p - mu_d))   (Eq. 10)

Lower is better. The published model was fit on 125 pristine photos that pyiqa downloads.
Here the model is fit on the bundled train photos by ``benchmarks/fit_niqe.py`` following the
paper's procedure (block 96, blocks kept when their mean local sigma exceeds 0.75 of the
image's largest, the MATLAB release's ``sh_th``), with pyiqa's own feature code, and shipped
as ``tir_env/assets/niqe_tir_params.mat``. Scores are computed by pyiqa's NIQE with that file.
The scale of the scores differs from the published model's; only comparisons are meaningful.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from tir_env.errors import MetricUnavailableError
from tir_env.metrics.pyiqa_backend import Device, MetricSpec, PyiqaMetric

ASSETS = Path(__file__).resolve().parent.parent / "assets"
#: The MVG fit (``mu_prisparam`` 1x36, ``cov_prisparam`` 36x36) shipped with TIR.
NIQE_PARAMS = ASSETS / "niqe_tir_params.mat"
BLOCK = 96


class NIQEMetric(PyiqaMetric):
    """pyiqa's NIQE loading the in-repo fit (``pretrained_model_path=``) instead of a download.

    NIQE is undefined where blocks have no local contrast (a flat or two-tone image: the MSCN
    statistics are 0/0 and pyiqa's covariance is NaN). Such images score the top of the range,
    ``info.range[1]`` (the worst), instead of NaN or an exception.

    Raises:
        MetricUnavailableError: the parameter file is missing (run ``benchmarks/fit_niqe.py``).
    """

    def __init__(
        self,
        spec: MetricSpec,
        device: Device | torch.device = "auto",
        weights_dir: str | Path | None = None,
    ) -> None:
        path = Path(spec.options.get("pretrained_model_path", NIQE_PARAMS))
        if not path.is_file():
            raise MetricUnavailableError(
                f"NIQE parameters not found at {path}; create them with "
                "`python -m benchmarks.fit_niqe` (fits on the bundled train photos)"
            )
        super().__init__(spec, device=device, weights_dir=weights_dir)

    def compute(self, batch: torch.Tensor, reference: torch.Tensor | None) -> torch.Tensor:
        """NIQE of each image; image by image (undefined ones scored worst) if the batch fails."""
        scores = self._try(batch)
        if scores is not None and torch.isfinite(scores).all():
            return scores
        worst = torch.tensor(float(self.info.range[1]), dtype=torch.float64)
        singles = [self._try(batch[i : i + 1]) for i in range(batch.shape[0])]
        return torch.stack(
            [s[0].cpu() if s is not None and torch.isfinite(s).all() else worst for s in singles]
        )

    def _try(self, batch: torch.Tensor) -> torch.Tensor | None:
        try:
            return super().compute(batch, None).reshape(-1).double()
        except torch.linalg.LinAlgError:
            return None


def luma255(batch: torch.Tensor) -> torch.Tensor:
    """NIQE input as pyiqa makes it: YIQ luma in [0, 255], rounded, float64, Nx1xHxW."""
    from pyiqa.utils.color_util import to_y_channel

    return to_y_channel(batch, 255, "yiq").round().to(torch.float64)


def block_features(y255: torch.Tensor, block: int = BLOCK) -> tuple[torch.Tensor, torch.Tensor]:
    """NIQE's 36 features and the sharpness of every ``block`` x ``block`` block.

    Mirrors ``pyiqa.archs.niqe_arch.niqe`` (which only returns the final score) step by step,
    calling its ``compute_feature``, so a model fit on these features matches what pyiqa's
    NIQE computes at test time.

    Args:
        y255: Nx1xHxW luma in [0, 255], float64 (see :func:`luma255`); at least one block.
        block: Block side at full resolution (96 in the paper).

    Returns:
        ``(features, sharpness)``: N x B x 36 features and N x B mean local sigma per block,
        B blocks in pyiqa's order (partial blocks at the right and bottom are dropped).
    """
    from pyiqa.archs.func_util import normalize_img_with_gauss
    from pyiqa.archs.niqe_arch import compute_feature
    from pyiqa.matlab_utils import blockproc, fspecial, imfilter, imresize

    h, w = y255.shape[-2:]
    img = y255[..., : h // block * block, : w // block * block]
    kernel = fspecial(7, 7.0 / 6, 1).to(img)
    mu = imfilter(img, kernel, padding="replicate")
    sigma = (imfilter(img**2, kernel, padding="replicate") - mu**2).abs().sqrt()
    sharpness = blockproc(sigma, [block, block], fun=lambda b, _: b.mean(dim=(1, 2, 3)))
    feats = []
    for scale in (1, 2):
        normalised = normalize_img_with_gauss(img, padding="replicate")
        feats.append(blockproc(normalised, [block // scale] * 2, fun=compute_feature))
        if scale == 1:
            img = imresize(img / 255.0, scale=0.5, antialiasing=True) * 255.0
    return torch.cat(feats, dim=-1), sharpness


def select_sharp(
    features: torch.Tensor, sharpness: torch.Tensor, threshold: float = 0.75
) -> torch.Tensor:
    """Blocks whose sharpness exceeds ``threshold`` times the image's sharpest (per image)."""
    keep = sharpness > threshold * sharpness.amax(dim=1, keepdim=True)
    return features[keep]


def fit_mvg(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """MVG fit of pristine block features (rows with NaN dropped): ``(mu 1x36, cov 36x36)``."""
    rows = features[~np.isnan(features).any(axis=1)]
    return rows.mean(axis=0, keepdims=True), np.cov(rows, rowvar=False)
