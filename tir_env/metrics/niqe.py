"""NIQE in batched torch, with a pristine model fit in this repository (no downloaded file).

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
Here the model is fit on the corpus' 63 train photos by ``benchmarks/fit_niqe.py`` following the
paper's procedure (block 96, blocks kept when their mean local sigma exceeds 0.75 of the
image's largest, the MATLAB release's ``sh_th``) and shipped as
``tir_env/assets/niqe_tir_params.mat``. The scale of the scores differs from the published
model's; only comparisons are meaningful.

Two implementations share that file:

* ``niqe`` (:class:`NIQEMetric`): this module's torch code, batched over images and blocks,
  on whatever device the batch is on, with no pyiqa import. It repeats pyiqa's arithmetic
  (``pyiqa.archs.niqe_arch``) step by step in float64, but builds the constant tables once
  (the AGGD ratio table, 9801 ``lgamma`` triples, was rebuilt on every call and took 70% of
  pyiqa's time), fits all blocks, both scales and the four neighbour products in one call,
  looks the table up with a binary search instead of a full ``argmin``, does MATLAB's
  half-size bicubic ``imresize`` as one strided convolution, and inverts Eq. 10's matrix once
  when images have one block (96-191 px: ``Sigma_d = 0``). Scores equal pyiqa's within 1e-4
  relative (largest difference seen 3e-5; tested on the test photos, noisy and blurred, and
  on random images in ``tests/test_metrics.py``); 4-5x faster than pyiqa on a CPU.
  On a CPU it takes its block features from :mod:`tir_env.metrics.niqe_cpu`, the same
  steps in OpenCV and numpy (torch's float64 convolutions have no fast CPU path).
* ``niqe_pyiqa`` (:class:`NIQEPyiqaMetric`): pyiqa's NIQE with the same file, the reference
  the parity tests compare against.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from tir_env.errors import MetricUnavailableError
from tir_env.metrics.fast import luma_u8
from tir_env.metrics.pyiqa_backend import Device, MetricSpec, PyiqaMetric, SizedMetric

ASSETS = Path(__file__).resolve().parent.parent / "assets"
#: The MVG fit (``mu_prisparam`` 1x36, ``cov_prisparam`` 36x36) shipped with TIR.
NIQE_PARAMS = ASSETS / "niqe_tir_params.mat"
BLOCK = 96
#: Neighbour offsets of the pairwise-product features (horizontal, vertical, two diagonals).
SHIFTS = ((0, 1), (1, 0), (1, 1), (1, -1))  # the order of the features
#: MATLAB ``imresize(..., 0.5)`` bicubic taps (a = -0.5, antialiased: the kernel is stretched
#: 2x), at distances 3.5, 2.5, ..., -3.5 input pixels from the output pixel's centre.
_HALF_TAPS = (-0.01171875, -0.03515625, 0.11328125, 0.43359375)


def fit_photos(path: str | Path = NIQE_PARAMS) -> str:
    """The image source a NIQE parameter file was fit on (``--split`` of its ``recipe``).

    ``train`` is the six bundled train photos, ``corpus:train@3`` the corpus' train photos of
    releases 1-3; ``unknown`` for a file that does not record its recipe.
    """
    import scipy.io

    recipe = scipy.io.loadmat(path).get("recipe")
    words = str(np.ravel(recipe)[0]).split() if recipe is not None and recipe.size else []
    if "--split" in words[:-1]:
        return words[words.index("--split") + 1]
    return "unknown"


def _params_path(spec: MetricSpec) -> Path:
    path = Path(spec.options.get("pretrained_model_path", NIQE_PARAMS))
    if not path.is_file():
        raise MetricUnavailableError(
            f"NIQE parameters not found at {path}; create them with "
            "`python -m benchmarks.fit_niqe` (fits on the corpus' train photos, `tir data photos`)"
        )
    return path


class NIQEMetric(SizedMetric):
    """NIQE in batched torch (see the module docstring), on the batch's device.

    NIQE is undefined where blocks have no local contrast (a flat or two-tone image: the MSCN
    statistics are 0/0 and the covariance is NaN). Such images score the top of the range,
    ``info.range[1]`` (the worst), instead of NaN or an exception; the other images of the
    batch keep their scores.

    On a CPU the block features come from :mod:`tir_env.metrics.niqe_cpu` (OpenCV and numpy,
    the same values to float rounding, about 2x faster on a reward-sized image); the spec
    option ``cpu_features=False`` keeps them in torch there too (``benchmarks/niqe_speed.py``).

    Raises:
        MetricUnavailableError: the parameter file is missing (run ``benchmarks/fit_niqe.py``).
    """

    def __init__(
        self,
        spec: MetricSpec,
        device: Device | torch.device = "auto",
        weights_dir: str | Path | None = None,
    ) -> None:
        # Device-agnostic like the fast metrics: it computes where the batch lives.
        super().__init__(spec)
        import scipy.io

        params = scipy.io.loadmat(_params_path(spec))
        self.mu = torch.from_numpy(np.ravel(params["mu_prisparam"])).double()
        self.cov = torch.from_numpy(np.asarray(params["cov_prisparam"])).double()
        self.cpu_features = bool(spec.options.get("cpu_features", True))

    def compute(self, batch: torch.Tensor, reference: torch.Tensor | None) -> torch.Tensor:
        """NIQE of each image (the worst score where it is undefined)."""
        self.check_size(batch)
        if batch.device.type == "cpu" and self.cpu_features:
            from tir_env.metrics.niqe_cpu import niqe_features_cpu

            features = niqe_features_cpu(luma255(batch))  # the same features, faster there
        else:
            features = niqe_features(luma255(batch))
        mu, cov = self._model(batch.device)
        if features.shape[1] == 1:
            # One block (96-191 px): Sigma_d is 0, so the inverse is a constant.
            diff = (mu - features[:, 0]).unsqueeze(1)
            scores = (diff @ self._inverse(batch.device) @ diff.transpose(1, 2)).reshape(-1).sqrt()
        else:
            scores = mvg_distance(features, mu, cov)
        worst = torch.full_like(scores, float(self.info.range[1]))
        return torch.where(torch.isfinite(scores), scores, worst)

    @functools.cache  # noqa: B019 (one per metric instance and device; metrics are cached)
    def _model(self, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        return self.mu.to(device), self.cov.to(device)

    @functools.cache  # noqa: B019
    def _inverse(self, device: torch.device) -> torch.Tensor:
        """``(Sigma_p / 2)^+``: Eq. 10's matrix when ``Sigma_d`` is 0."""
        return torch.linalg.pinv(self._model(device)[1] / 2)


class NIQEPyiqaMetric(PyiqaMetric):
    """pyiqa's NIQE loading the in-repo fit (``pretrained_model_path=``): the reference.

    Undefined images score ``info.range[1]`` as in :class:`NIQEMetric`.

    Raises:
        MetricUnavailableError: the parameter file is missing (run ``benchmarks/fit_niqe.py``).
    """

    def __init__(
        self,
        spec: MetricSpec,
        device: Device | torch.device = "auto",
        weights_dir: str | Path | None = None,
    ) -> None:
        _params_path(spec)
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
    return (luma_u8(batch).double() * 255.0).round()


@functools.lru_cache(maxsize=8)
def _gauss7(device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """MATLAB's ``fspecial('gaussian', 7, 7/6)`` as pyiqa builds it, split for speed.

    pyiqa filters with the 2-D window rounded to float32 taps. A float64 2-D convolution has
    no fast path on a CPU, and the separable window alone is not close enough: MSCN's
    ``I - mu`` cancels, so its 1e-8 difference moves AGGD shape fits to the next point of
    their 0.001 grid often enough to change scores by up to 0.5% (seen on blurred photos).
    So the window is the separable float64 Gaussian plus the residual of the rounding (below
    2e-9 a tap), whose small contribution is computed in float32: together they reproduce
    pyiqa's window to 1e-14, 5x faster on batches.

    Returns:
        ``(taps, residual)``: normalised 1-D taps (float64, 7) and the 1x1x7x7 float32
        residual ``window - outer(taps, taps)``.
    """
    y, x = np.ogrid[-3:4, -3:4]
    h = np.exp(-(x * x + y * y) / (2.0 * (7.0 / 6) ** 2))
    h[h < np.finfo(h.dtype).eps * h.max()] = 0
    window = torch.from_numpy(h / h.sum()).float().double()
    g = torch.exp(-(torch.arange(-3, 4, dtype=torch.float64) ** 2) / (2.0 * (7.0 / 6) ** 2))
    taps = g / g.sum()
    residual = (window - torch.outer(taps, taps)).float().view(1, 1, 7, 7)
    return taps.to(device), residual.to(device)


@functools.lru_cache(maxsize=8)
def _aggd_table(device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Shape grid ``gamma`` (0.2 to 10 by 0.001) and ``r(gamma)``, increasing in gamma.

    ``r(g) = Gamma(2/g)^2 / (Gamma(1/g) Gamma(3/g))`` (Lasmar et al. 2009, Eq. 9 of the NIQE
    paper's BRISQUE step); the grid is made in float32 then widened, as pyiqa does.
    """
    gam = torch.arange(0.2, 10 + 0.001, 0.001).double()
    r_gam = (
        2 * torch.lgamma(2.0 / gam) - (torch.lgamma(1.0 / gam) + torch.lgamma(3.0 / gam))
    ).exp()
    return gam.to(device), r_gam.to(device)


def _nearest(table: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    """``(table - values).abs().argmin(-1)`` for an increasing ``table``, by binary search.

    Ties go to the lower index and NaN or infinite values to index 0, as ``argmin`` does.
    """
    hi = torch.searchsorted(table, values.contiguous()).clamp(1, table.numel() - 1)
    lo = hi - 1
    pos = torch.where((table[lo] - values).abs() <= (table[hi] - values).abs(), lo, hi)
    return torch.where(torch.isfinite(values), pos, torch.zeros_like(pos))


def aggd_moments(block: torch.Tensor) -> torch.Tensor:
    """Per-block means of ``[x < 0]``, ``[x > 0]``, ``x^2 [x < 0]``, ``x^2 [x > 0]``, ``|x|``.

    Args:
        block: M x P values (one block per row).

    Returns:
        5 x M. Everything :func:`estimate_aggd` needs, so blocks of different sizes (both
        scales) are fit in one call on the concatenated moments.
    """
    neg = block < 0
    square = block * block
    square_l = torch.where(neg, square, 0.0).sum(dim=-1)
    sums = [
        neg.sum(dim=-1),
        (block > 0).sum(dim=-1),
        square_l,
        square.sum(dim=-1) - square_l,  # zeros add nothing to either side
        block.abs().sum(dim=-1),
    ]
    return torch.stack(sums).to(block.dtype) / block.shape[-1]


def estimate_aggd(moments: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Asymmetric generalised Gaussian fit ``(alpha, beta_l, beta_r)`` from :func:`aggd_moments`.

    Moment matching (Lasmar, Stitou & Berthoumieu 2009), pyiqa's ``estimate_aggd_param``:
    ``sigma_l = sqrt(E[x^2 | x < 0])``, ``gamma = sigma_l / sigma_r``,
    ``r = E|x|^2 / E[x^2]``, ``R = r (gamma^3 + 1)(gamma + 1) / (gamma^2 + 1)^2``; alpha is the
    grid point whose ``rho(alpha)`` is nearest ``R``, ``beta = sigma sqrt(G(1/a) / G(3/a))``.
    """
    gam, r_gam = _aggd_table(moments.device)
    frac_l, frac_r, square_l, square_r, absolute = moments
    left_std, right_std = torch.sqrt(square_l / frac_l), torch.sqrt(square_r / frac_r)
    gammahat = left_std / right_std
    rhat = absolute.pow(2) / (square_l + square_r)
    rhatnorm = (rhat * (gammahat.pow(3) + 1) * (gammahat + 1)) / (gammahat.pow(2) + 1).pow(2)
    alpha = gam[_nearest(r_gam, rhatnorm)]
    scale = (torch.lgamma(1 / alpha) - torch.lgamma(3 / alpha)).exp().sqrt()
    return alpha, left_std * scale, right_std * scale


def _neighbour_moments(block: torch.Tensor) -> torch.Tensor:
    """:func:`aggd_moments` of Mx1xhxw blocks and of their 4 neighbour products: 5 x 5M.

    pyiqa multiplies each block by ``torch.roll(block, shift)``, wrapping around inside the
    block; one circular pad gives all four rolled copies as slices, value for value, and the
    products are written straight into one buffer.
    """
    h, w = block.shape[-2:]
    wrapped = F.pad(block, (1, 1, 1, 0), mode="circular")  # wrapped[i + 1, j + 1] = block[i, j]
    rolled = (
        wrapped[..., 1:, :w],  # shift (0, 1): block[i, j - 1]
        wrapped[..., :h, 1 : w + 1],  # (1, 0): block[i - 1, j]
        wrapped[..., :h, :w],  # (1, 1): block[i - 1, j - 1]
        wrapped[..., :h, 2:],  # (1, -1): block[i - 1, j + 1]
    )
    out = block.new_empty((1 + len(rolled), *block.shape))
    out[0] = block
    for k, shifted in enumerate(rolled, start=1):
        torch.mul(block, shifted, out=out[k])
    return aggd_moments(out.flatten(2).flatten(0, 1))


def block_statistics(blocks: Sequence[torch.Tensor]) -> torch.Tensor:
    """NIQE's 18 features of the MSCN blocks of each scale (pyiqa's ``compute_feature``).

    Args:
        blocks: Per scale, M x 1 x h x w MSCN blocks (the same M at every scale).

    Returns:
        M x 18 per scale, concatenated: M x 18S.
    """
    m = blocks[0].shape[0]
    moments = torch.cat([_neighbour_moments(b) for b in blocks], dim=1)
    alpha, beta_l, beta_r = (
        t.view(len(blocks), 1 + len(SHIFTS), m) for t in estimate_aggd(moments)
    )
    mean = (beta_r - beta_l) * (torch.lgamma(2 / alpha) - torch.lgamma(1 / alpha)).exp()
    first = torch.stack([alpha[:, 0], (beta_l[:, 0] + beta_r[:, 0]) / 2], dim=-1)
    pairs = torch.stack([alpha, mean, beta_l, beta_r], dim=-1)[:, 1:].transpose(1, 2)
    scales = torch.cat([first, pairs.reshape(len(blocks), m, 4 * len(SHIFTS))], dim=-1)
    return scales.transpose(0, 1).reshape(m, -1)


def _filter7(img: torch.Tensor) -> torch.Tensor:
    """7x7 Gaussian filter with replicated borders (MATLAB ``imfilter(..., 'replicate')``).

    pyiqa's float32-rounded window, as separable float64 taps plus a float32 residual
    (see :func:`_gauss7`).
    """
    taps, residual = _gauss7(img.device)
    padded = F.pad(img, (3, 3, 3, 3), mode="replicate")
    smooth = F.conv2d(F.conv2d(padded, taps.view(1, 1, 7, 1)), taps.view(1, 1, 1, 7))
    return smooth + F.conv2d(padded.float(), residual).to(img.dtype)


def mscn(img: torch.Tensor) -> torch.Tensor:
    """Mean-subtracted contrast-normalised coefficients ``(I - mu) / (sigma + 1)``."""
    mu, second = _filter7(torch.cat([img, img**2])).chunk(2)
    sigma = torch.sqrt((second - mu**2).abs() + torch.finfo(img.dtype).eps)
    return (img - mu) / (sigma + 1)


def local_sigma(img: torch.Tensor) -> torch.Tensor:
    """Local standard deviation (the same window), the fit's block sharpness measure."""
    mu = _filter7(img)
    return (_filter7(img**2) - mu**2).abs().sqrt()


@functools.lru_cache(maxsize=8)
def _half_taps(device: torch.device) -> torch.Tensor:
    half = torch.tensor(_HALF_TAPS, dtype=torch.float64)
    taps = torch.cat([half, half.flip(0)])
    return (taps / taps.sum()).to(device)


def half_size(img: torch.Tensor) -> torch.Tensor:
    """MATLAB ``imresize(img, 0.5)`` (bicubic, antialiased) of even-sided Nx1xHxW float64.

    Every output pixel is 8 input pixels weighted by the stretched cubic kernel; borders are
    mirrored with the edge pixel repeated (MATLAB's index folding), so it is one separable
    convolution of stride 2 on a symmetrically padded image.
    """
    taps = _half_taps(img.device)
    img = _pad_symmetric(img, -2, 3, 4)
    img = F.conv2d(img, taps.view(1, 1, 8, 1), stride=(2, 1))
    img = _pad_symmetric(img, -1, 3, 4)
    return F.conv2d(img, taps.view(1, 1, 1, 8), stride=(1, 2))


def _pad_symmetric(img: torch.Tensor, dim: int, before: int, after: int) -> torch.Tensor:
    """Mirror ``before``/``after`` samples along ``dim``, the edge sample included."""
    index = _symmetric_index(img.shape[dim], before, after, img.device)
    return img.index_select(dim, index)


@functools.lru_cache(maxsize=32)
def _symmetric_index(n: int, before: int, after: int, device: torch.device) -> torch.Tensor:
    """Source index of every padded position: ``[b-1, ..., 0, 0, ..., n-1, n-1, ..., n-a]``."""
    index = list(range(before - 1, -1, -1)) + list(range(n)) + list(range(n - 1, n - 1 - after, -1))
    return torch.tensor(index, device=device)


def _blocks(img: torch.Tensor, side: int) -> torch.Tensor:
    """Non-overlapping ``side`` blocks of NxCxHxW, in pyiqa ``blockproc``'s order: (B N)xCxsxs."""
    n, c, h, w = img.shape
    rows, cols = h // side, w // side
    blocks = F.unfold(img, side, stride=side).reshape(n, c, side, side, rows, cols)
    return blocks.permute(5, 4, 0, 1, 2, 3).reshape(rows * cols * n, c, side, side)


def _per_image(stats: torch.Tensor, n: int) -> torch.Tensor:
    """(B N) x F block results back to N x B x F."""
    return stats.reshape(-1, n, stats.shape[-1]).transpose(0, 1)


def niqe_features(y255: torch.Tensor, block: int = BLOCK) -> torch.Tensor:
    """The 36 features of every ``block`` x ``block`` block: N x B x 36.

    Follows ``pyiqa.archs.niqe_arch.niqe`` step by step: MSCN blocks at full and half
    resolution, 18 features each, B blocks in pyiqa's order (partial blocks at the right and
    bottom are dropped).

    Args:
        y255: Nx1xHxW luma in [0, 255], float64 (see :func:`luma255`); at least one block.
        block: Block side at full resolution (96 in the paper).
    """
    n, _, h, w = y255.shape
    img = y255[..., : h // block * block, : w // block * block]
    coarse = half_size(img / 255.0) * 255.0
    blocks = [_blocks(mscn(img), block), _blocks(mscn(coarse), block // 2)]
    return _per_image(block_statistics(blocks), n)


def block_features(y255: torch.Tensor, block: int = BLOCK) -> tuple[torch.Tensor, torch.Tensor]:
    """NIQE's 36 features and the sharpness of every ``block`` x ``block`` block (for the fit).

    Args:
        y255: Nx1xHxW luma in [0, 255], float64 (see :func:`luma255`); at least one block.
        block: Block side at full resolution (96 in the paper).

    Returns:
        ``(features, sharpness)``: N x B x 36 features (:func:`niqe_features`) and N x B mean
        local sigma per block, in the same order.
    """
    n, _, h, w = y255.shape
    img = y255[..., : h // block * block, : w // block * block]
    sharpness = _blocks(local_sigma(img), block).mean(dim=(1, 2, 3)).reshape(-1, n).t()
    return niqe_features(y255, block), sharpness


def mvg_distance(features: torch.Tensor, mu_p: torch.Tensor, cov_p: torch.Tensor) -> torch.Tensor:
    """Eq. 10 for each image of N x B x 36 block features; NaN where it is undefined.

    ``mu_d`` ignores NaN entries one by one and ``Sigma_d`` drops blocks with any NaN
    (pyiqa's ``nanmean`` and ``nancov``); with a single block ``Sigma_d`` is 0.
    """
    nan = torch.isnan(features)
    mu_d = torch.where(nan, 0.0, features).sum(1) / (~nan).float().sum(1)
    cov_d = _masked_cov(features, ~nan.any(dim=-1))
    ok = torch.isfinite(cov_d).all(dim=(1, 2)) & torch.isfinite(mu_d).all(dim=1)
    # Undefined images get a harmless stand-in so one bad image cannot fail the batched pinv.
    cov_d = torch.where(ok.view(-1, 1, 1), cov_d, cov_p)
    mu_d = torch.where(ok.view(-1, 1), mu_d, mu_p)
    inverse = torch.linalg.pinv((cov_p + cov_d) / 2)
    diff = (mu_p - mu_d).unsqueeze(1)
    quality = torch.bmm(torch.bmm(diff, inverse), diff.transpose(1, 2)).reshape(-1)
    return torch.where(ok, quality.sqrt(), torch.nan)


def _masked_cov(features: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    """Covariance of the ``rows``-selected blocks of each image (``np.cov`` normalisation).

    ``n - 1`` in the denominator, ``n`` when only one block is left (pyiqa's ``cov``); NaN
    when none is.
    """
    count = rows.sum(dim=1).to(features.dtype)
    safe = torch.where(rows.unsqueeze(-1), features, 0.0)
    mean = safe.sum(1) / count.unsqueeze(-1)
    centred = torch.where(rows.unsqueeze(-1), features - mean.unsqueeze(1), 0.0)
    denom = torch.where(count > 1, count - 1, count)
    return centred.transpose(1, 2) @ centred / denom.view(-1, 1, 1)


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
