"""Perception from image statistics: the features and the MLP ensemble over them.

:class:`PerceptionFeatureNet` reads an image only through :func:`perception_features`: the
16 hand-made :func:`~tir_env.tools.learned.nets.descriptors` at full and at half resolution,
and :func:`spectral_descriptors`, how fast the image's power spectrum falls off in each of
eight directions. A motion blur attenuates high frequencies along one direction only (a
defocus blur along all), while a photo's own edges put energy along a direction at every
frequency alike, so the fall-off per direction, sorted (a quarter turn only permutes the
directions), separates motion blur from defocus and from a photo that is soft anyway.

Why not a CNN: on the corpus' held-out test photos this network separates motion blur with a
ROC AUC of 0.80 and defocus with 0.91 where the convolutional
:class:`~tir_env.tools.learned.nets.PerceptionNetV2`, trained on the same 20,000 examples,
reached 0.66 and 0.81 (docs/perception.md): a CNN fits 23 photos' crops; statistics that
mean the same on every photo transfer.
"""

from __future__ import annotations

import functools
import math

import torch
import torch.nn.functional as F
from torch import nn

from tir_env.tools.learned.nets import N_DESCRIPTORS, _grey, descriptors, ensemble_member

#: Directions (wedges of the half-plane of frequencies) the spectrum is split into.
N_DIRECTIONS = 8
#: Radial frequency bands (fractions of the Nyquist frequency) per direction.
BANDS = ((0.05, 0.12), (0.12, 0.25), (0.25, 0.45), (0.45, 0.8))
#: Columns of :func:`spectral_descriptors`: sorted fall-offs between adjacent bands, and
#: each band's energy averaged over the directions.
N_SPECTRAL = N_DIRECTIONS * (len(BANDS) - 1) + len(BANDS)
#: Resolutions (2x2 means applied) the gradient coherence is measured at.
COHERENCE_SCALES = (0, 1, 2)
#: Finer radial bands of :func:`direction_profile` (fractions of the Nyquist frequency).
PROFILE_BANDS = (
    (0.03, 0.07),
    (0.07, 0.12),
    (0.12, 0.2),
    (0.2, 0.3),
    (0.3, 0.45),
    (0.45, 0.65),
    (0.65, 0.9),
)
#: Bands whose summed anisotropy names the profile's reference direction (the weakest one).
PROFILE_KEY_BANDS = slice(2, 6)
#: Columns of :func:`direction_profile`: each band at the reference direction, at the pairs
#: of directions 1, 2, 3 wedges from it (averaged) and at the one across.
N_PROFILE = (N_DIRECTIONS // 2 + 1) * len(PROFILE_BANDS)
#: Columns of :func:`perception_features` (without the direction profile: the shipped networks).
N_PERCEPTION_FEATURES = 2 * N_DESCRIPTORS + N_SPECTRAL + len(COHERENCE_SCALES)
#: Columns that a quarter turn of the image swaps pairwise (the blockiness directions).
QUARTER_TURN_SWAPS = ((1, 2), (N_DESCRIPTORS + 1, N_DESCRIPTORS + 2))


def n_features(profile: bool, blind: bool = False) -> int:
    """Columns of :func:`perception_features` with or without the profile and the kernel fits."""
    from tir_env.tools.classical.kernel_fits import N_KERNEL_FIT

    return N_PERCEPTION_FEATURES + (N_PROFILE if profile else 0) + (N_KERNEL_FIT if blind else 0)


@functools.lru_cache(maxsize=32)
def _flat_masks(
    h: int, w: int, device: torch.device, bands: tuple[tuple[float, float], ...]
) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`_band_masks` flattened to float (D x B x HW) and each mask's pixel count.

    Cached: an image size's masks are the same every call, and building them cost about a
    fifth of the statistics' time in a search agent's episode.
    """
    masks = _band_masks(h, w, device, bands).flatten(2).float()
    return masks, masks.sum(dim=2).clamp_min(1.0)


def _band_masks(
    h: int, w: int, device: torch.device, bands: tuple[tuple[float, float], ...] = BANDS
) -> torch.Tensor:
    """Boolean masks (directions x bands x h x w) over the centred spectrum of an h x w image."""
    fy = (torch.arange(h, device=device) - h // 2).float() / (h / 2)
    fx = (torch.arange(w, device=device) - w // 2).float() / (w / 2)
    y, x = torch.meshgrid(fy, fx, indexing="ij")
    radius, angle = torch.hypot(y, x), torch.remainder(torch.atan2(y, x), math.pi)
    masks = []
    for k in range(N_DIRECTIONS):
        off = torch.remainder(angle - math.pi * k / N_DIRECTIONS + math.pi / 2, math.pi)
        wedge = (off - math.pi / 2).abs() < math.pi / (2 * N_DIRECTIONS)
        masks.append(torch.stack([wedge & (radius >= lo) & (radius < hi) for lo, hi in bands]))
    return torch.stack(masks)


def spectral_descriptors(x: torch.Tensor, power: torch.Tensor | None = None) -> torch.Tensor:
    """Directional spectral fall-off of a Nx3xHxW batch in [0, 1] (N x :data:`N_SPECTRAL`).

    The grey image, mean removed and Hann-windowed (no border leakage), is Fourier
    transformed; per direction and band the log mean power. Features: for each pair of
    adjacent bands, the eight directions' fall-offs sorted (rotation-invariant), then each
    band's log power averaged over directions. ``power``: :func:`_power_spectrum` of ``x``
    if already computed.
    """
    energy = _directional_energy(x, BANDS, power)
    falloff = energy[:, :, 1:] - energy[:, :, :-1]  # N x D x (B - 1)
    ordered = [falloff[:, :, j].sort(dim=1).values for j in range(falloff.shape[2])]
    return torch.cat([*ordered, energy.mean(dim=1)], dim=1)


def _power_spectrum(x: torch.Tensor) -> torch.Tensor:
    """Centred power spectrum (N x H x W) of the grey, mean-removed, Hann-windowed image."""
    g = _grey(x)[:, 0]
    h, w = g.shape[-2:]
    window = torch.outer(
        torch.hann_window(h, periodic=False, device=x.device),
        torch.hann_window(w, periodic=False, device=x.device),
    )
    centred = (g - g.mean(dim=(1, 2), keepdim=True)) * window
    return torch.fft.fftshift(torch.fft.fft2(centred), dim=(1, 2)).abs().pow(2)


def _directional_energy(
    x: torch.Tensor, bands: tuple[tuple[float, float], ...], power: torch.Tensor | None = None
) -> torch.Tensor:
    """Log mean power (N x directions x bands) of the grey, mean-removed, Hann-windowed image.

    ``power``: :func:`_power_spectrum` of ``x`` if already computed (the two spectral
    readings share one transform).
    """
    power = _power_spectrum(x) if power is None else power
    h, w = power.shape[-2:]
    masks, counts = _flat_masks(h, w, x.device, bands)
    return torch.log(torch.einsum("np,dbp->ndb", power.flatten(1), masks) / counts + 1e-7)


def direction_profile(x: torch.Tensor, power: torch.Tensor | None = None) -> torch.Tensor:
    """The spectrum's anisotropy band by band, seen from its weakest direction (N x N_PROFILE).

    :func:`spectral_descriptors` sorts each band's fall-offs on its own, which loses *which*
    direction is weak in each band. A motion blur weakens one direction in every band above
    its cut-off, a photo's own texture a different direction per band. Here each band's log
    power per direction, minus its mean over the directions, is read starting from the
    direction weakest over the middle bands (:data:`PROFILE_KEY_BANDS`), the two directions
    at each angular distance from it averaged: the same under quarter turns and mirror
    images. A network reading it too (``PerceptionFeatureNet(profile=True)``, ``python -m
    benchmarks.train_perception --profile``) tells the types apart better on held-out photos
    (motion blur ROC AUC 0.82 -> 0.85, mean F1 0.70 -> 0.75 on the corpus' test photos); the
    shipped network reads it (docs/perception.md, "Which direction is weak" and "The
    direction profile ships"). ``power``: :func:`_power_spectrum` of ``x`` if already computed.
    """
    energy = _directional_energy(x, PROFILE_BANDS, power)
    anisotropy = energy - energy.mean(dim=1, keepdim=True)
    d = N_DIRECTIONS
    start = anisotropy[:, :, PROFILE_KEY_BANDS].sum(dim=2).argmin(dim=1)
    order = (start[:, None] + torch.arange(d, device=x.device)[None]) % d
    rolled = torch.gather(anisotropy, 1, order[:, :, None].expand_as(anisotropy))
    pairs = [(rolled[:, k] + rolled[:, d - k]) / 2 for k in range(1, d // 2)]
    return torch.cat([rolled[:, 0], *pairs, rolled[:, d // 2]], dim=1)


def coherence(g: torch.Tensor) -> torch.Tensor:
    """Structure-tensor coherence of a Nx1xHxW batch from central differences (N).

    ``(l1 - l2) / (l1 + l2)`` of the image-mean gradient tensor: near 1 when the gradients
    share one orientation (a motion blur leaves only those across its direction). Both
    derivatives are taken at the same pixel, so a quarter turn leaves it unchanged (the
    forward differences of :func:`~tir_env.tools.learned.nets.descriptors` pair each
    pixel's horizontal step with a neighbour's vertical one).
    """
    gx = (g[..., 1:-1, 2:] - g[..., 1:-1, :-2]) / 2
    gy = (g[..., 2:, 1:-1] - g[..., :-2, 1:-1]) / 2
    jxx, jyy, jxy = (t.mean(dim=(1, 2, 3)) for t in (gx * gx, gy * gy, gx * gy))
    return torch.sqrt((jxx - jyy) ** 2 + 4 * jxy**2) / (jxx + jyy + 1e-6)


def perception_features(
    x: torch.Tensor, profile: bool = False, blind: bool = False
) -> torch.Tensor:
    """What :class:`PerceptionFeatureNet` sees of a Nx3xHxW batch (N x :func:`n_features`).

    The :func:`~tir_env.tools.learned.nets.descriptors` at full and at half resolution (a
    2x2 mean: noise and JPEG blocks fade, blur shows at a larger scale), the
    :func:`spectral_descriptors`, the gradient :func:`coherence` at full, half and quarter
    resolution, with ``profile`` the :func:`direction_profile` after them, and with
    ``blind`` (not in the shipped network) the blind deblurring's
    :func:`~tir_env.tools.classical.kernel_fits.kernel_fit_features` last.
    """
    half = F.avg_pool2d(x, 2)
    g, scaled = _grey(x), []
    for halvings in COHERENCE_SCALES:
        scaled.append(coherence(F.avg_pool2d(g, 2**halvings) if halvings else g))
    power = _power_spectrum(x)
    parts = [
        descriptors(x),
        descriptors(half),
        spectral_descriptors(x, power),
        torch.stack(scaled, 1),
    ]
    if profile:
        parts.append(direction_profile(x, power))
    if blind:
        from tir_env.tools.classical.kernel_fits import kernel_fit_features

        parts.append(kernel_fit_features(x))
    return torch.cat(parts, dim=1)


class PerceptionFeatureNet(nn.Module):
    """Presence, severity and quality from :func:`perception_features` (see the module doc).

    An ensemble of two-hidden-layer MLPs over the standardised features (the training set's
    mean and spread, kept as buffers), outputs averaged.

    Args:
        outputs: Number of outputs (see :mod:`tir_env.perception`).
        hidden: Width of each member's hidden layers.
        members: Number of MLPs averaged.
        profile: Read the :func:`direction_profile` too (``False``: records before it,
            which say nothing of it).
        blind: Read the blind deblurring's kernel fits too (docs/perception.md, "What the
            blind deblurring sees"; ``False``: the shipped network).
    """

    center: torch.Tensor
    spread: torch.Tensor

    def __init__(
        self,
        outputs: int = 18,
        hidden: int = 192,
        members: int = 3,
        profile: bool = False,
        blind: bool = False,
    ) -> None:
        super().__init__()
        self.profile, self.blind = profile, blind
        width = n_features(profile, blind)
        self.register_buffer("center", torch.zeros(width))
        self.register_buffer("spread", torch.ones(width))
        self.members = nn.ModuleList(
            ensemble_member(width, hidden, outputs) for _ in range(members)
        )

    def forward(self, x: torch.Tensor, features: torch.Tensor | None = None) -> torch.Tensor:
        """Outputs (N x outputs) of a Nx3xHxW batch in [0, 1] (at least 32x32).

        ``features``: :func:`perception_features` of ``x`` if already computed (training
        caches them; ``x`` is then not read).
        """
        f = perception_features(x, self.profile, self.blind) if features is None else features
        return self.head(f)

    def head(self, features: torch.Tensor) -> torch.Tensor:
        """Outputs of :func:`perception_features` rows (the members' mean)."""
        z = (features - self.center) / self.spread
        return torch.stack([m(z) for m in self.members]).mean(dim=0)
