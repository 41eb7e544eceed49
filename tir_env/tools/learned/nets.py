"""The small networks behind the learned tools and the perception model.

Three architectures, all a few tens of thousands of parameters:

* :class:`RestoreNet`: same-size restoration. A residual CNN in the DnCNN / NAFNet-lite
  family: pixel-unshuffle by 2 (4x fewer positions, twice the receptive field), a 3x3 head,
  ``blocks`` residual blocks (conv-ReLU-conv plus NAFNet's simplified channel attention, a
  global average pool that gives every block image-wide context), a 3x3 tail and
  pixel-shuffle back. It predicts a residual added to a *base* image: the input itself, or
  the output of a classical tool (the *prior*) when the tool is a hybrid; the prior is also
  fed to the network as three extra input channels. The tail starts at zero, so an untrained
  network returns its base exactly.
* :class:`SRNet`: x4 super-resolution. The same body at the low resolution, a tail with
  ``3 * 16`` channels and a x4 pixel-shuffle, added to a x4 base image: a classical x4
  result (the prior) or the bicubic upsampling (ESPCN, Shi et al., CVPR 2016, with a
  global residual as in VDSR).
* :class:`PerceptionNet`: multi-label degradation classifier: a full-resolution conv stem,
  four stride-2 conv stages,
  global average and max pooling, one linear layer, one logit per degradation type.

Networks work on float32 NCHW in [0, 1] of any size (down to 1x1: inputs are padded with
replicated borders to a multiple of the shuffle factor and cropped back).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from tir_env.dsp.torch_ops import min_filter


class ChannelAttention(nn.Module):
    """NAFNet's simplified channel attention: ``x * W avgpool(x)`` (Chen et al., ECCV 2022)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(channels, channels, 1)

    def forward(self, x: torch.Tensor, inplace: bool = False) -> torch.Tensor:
        """Scale every channel by a linear map of the channel means (``inplace``: into ``x``)."""
        return (x.mul_ if inplace else x.mul)(self.proj(x.mean(dim=(2, 3), keepdim=True)))


class ResBlock(nn.Module):
    """``x + conv(CA(relu(conv(x))))``: a residual block with channel attention."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.attention = ChannelAttention(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """One residual update; without gradients, in place on its own temporaries (same bits)."""
        if not torch.is_grad_enabled():  # a call: no new full-size tensors (+ commutes exactly)
            return self.conv2(self.attention(self.conv1(x).relu_(), inplace=True)).add_(x)
        return x + self.conv2(self.attention(F.relu(self.conv1(x))))


def _body(in_channels: int, channels: int, blocks: int) -> nn.Sequential:
    """Head conv, ``blocks`` residual blocks, ReLU."""
    layers: list[nn.Module] = [nn.Conv2d(in_channels, channels, 3, padding=1)]
    layers += [ResBlock(channels) for _ in range(blocks)]
    layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def _zero_tail(in_channels: int, out_channels: int) -> nn.Conv2d:
    """A 3x3 conv initialised to zero, so the network starts as its base image."""
    tail = nn.Conv2d(in_channels, out_channels, 3, padding=1)
    with torch.no_grad():
        tail.weight.zero_()
        tail.bias.zero_()  # type: ignore[union-attr]
    return tail


class RestoreNet(nn.Module):
    """Same-size residual restoration network (see the module docstring).

    Args:
        channels: Feature channels.
        blocks: Residual blocks.
        shuffle: Pixel-unshuffle factor (1 = full resolution).
        with_prior: Whether a prior image (a classical tool's output) is given, used as the
            base and as extra input channels.
        coords: Whether to add each pixel's vertical position as an input channel (haze
            thickens with distance, and distance grows towards the top of outdoor photos).
    """

    def __init__(
        self,
        channels: int = 32,
        blocks: int = 3,
        shuffle: int = 2,
        with_prior: bool = False,
        coords: bool = False,
    ) -> None:
        super().__init__()
        self.shuffle = shuffle
        self.coords = coords
        in_channels = ((6 if with_prior else 3) + int(coords)) * shuffle**2
        self.body = _body(in_channels, channels, blocks)
        self.tail = _zero_tail(channels, 3 * shuffle**2)

    def forward(self, x: torch.Tensor, prior: torch.Tensor | None = None) -> torch.Tensor:
        """Restore ``x`` (Nx3xHxW); the result is ``base + residual`` (not clamped)."""
        base = x if prior is None else prior
        inputs = x if prior is None else torch.cat([x, prior], dim=1)
        h, w = x.shape[-2:]
        if self.coords:  # the row's height in the image, -1 (top) to 1 (bottom)
            rows = torch.linspace(-1.0, 1.0, h, device=x.device, dtype=x.dtype)
            inputs = torch.cat([inputs, rows.view(1, 1, h, 1).expand(x.shape[0], 1, h, w)], 1)
        s = self.shuffle
        pad_h, pad_w = -h % s, -w % s
        if pad_h or pad_w:
            inputs = F.pad(inputs, (0, pad_w, 0, pad_h), mode="replicate")
        features = self.body(F.pixel_unshuffle(inputs, s) if s > 1 else inputs)
        residual = self.tail(features)
        residual = F.pixel_shuffle(residual, s) if s > 1 else residual
        return base + residual[..., :h, :w]


class SRNet(nn.Module):
    """x4 super-resolution: bicubic x4 plus a learned, pixel-shuffled residual.

    Args:
        channels: Feature channels.
        blocks: Residual blocks (at the low resolution).
    """

    scale = 4

    def __init__(self, channels: int = 32, blocks: int = 3) -> None:
        super().__init__()
        self.body = _body(3, channels, blocks)
        self.tail = _zero_tail(channels, 3 * self.scale**2)

    def forward(self, x: torch.Tensor, prior: torch.Tensor | None = None) -> torch.Tensor:
        """Upscale ``x`` (Nx3xhxw) to Nx3x4hx4w (not clamped).

        The residual is added to ``prior`` (a classical x4 result) when given, else to the
        bicubic x4 upsampling of ``x``.
        """
        h, w = x.shape[-2:]
        if prior is None:
            prior = F.interpolate(x, size=(4 * h, 4 * w), mode="bicubic", align_corners=False)
        return prior + F.pixel_shuffle(self.tail(self.body(x)), self.scale)


class PerceptionNet(nn.Module):
    """Multi-label degradation classifier: one logit per degradation type.

    Args:
        classes: Number of degradation types.
        width: Channels of the first stage (doubled, then kept, in later stages).
    """

    def __init__(self, classes: int = 8, width: int = 16) -> None:
        super().__init__()
        widths = (width, 2 * width, 4 * width, 4 * width)
        # A full-resolution stem first: noise, JPEG blocks and the softness of an upsampled
        # image live in single pixels, which a strided first layer would alias away.
        layers: list[nn.Module] = [nn.Conv2d(3, width, 3, padding=1), nn.ReLU()]
        previous = width
        for channels in widths:
            layers += [
                nn.Conv2d(previous, channels, 3, stride=2, padding=1),
                nn.ReLU(),
                nn.Conv2d(channels, channels, 3, padding=1),
                nn.ReLU(),
            ]
            previous = channels
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(2 * previous, classes)
        for m in self.features:
            if isinstance(m, nn.Conv2d):  # He init: PyTorch's default stalled this plain stack
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
                nn.init.zeros_(m.bias)  # type: ignore[arg-type]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits (Nxclasses) of a Nx3xHxW batch (the network is centred on 0.5)."""
        f = self.features(x - 0.5)
        pooled = torch.cat([f.mean(dim=(2, 3)), f.amax(dim=(2, 3))], dim=1)
        return self.head(pooled)


#: Number of hand-made image statistics :func:`descriptors` computes.
N_DESCRIPTORS = 16


def _grey(x: torch.Tensor) -> torch.Tensor:
    return (0.299 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2]).unsqueeze(1)


def _box(x: torch.Tensor, k: int) -> torch.Tensor:
    return F.avg_pool2d(F.pad(x, (k // 2,) * 4, mode="replicate"), k, stride=1)


def _blockiness(g: torch.Tensor, dim: int) -> torch.Tensor:
    """Mean jump across 8-pixel block borders over the mean jump inside blocks (JPEG)."""
    d = (g.diff(dim=dim)).abs().mean(dim=5 - dim)  # N x 1 x L-1 along ``dim``
    d = d.flatten(1)
    idx = torch.arange(d.shape[1], device=d.device)
    border = d[:, (idx % 8) == 7].mean(dim=1)
    inside = d[:, (idx % 8) != 7].mean(dim=1)
    return torch.log((border + 1e-3) / (inside + 1e-3))


def _coherence(g: torch.Tensor) -> torch.Tensor:
    """Structure-tensor coherence ((l1 - l2) / (l1 + l2) of the mean tensor): one blur direction."""
    gx, gy = g.diff(dim=3)[..., :-1, :], g.diff(dim=2)[..., :, :-1]
    jxx, jyy, jxy = (gx * gx).mean((1, 2, 3)), (gy * gy).mean((1, 2, 3)), (gx * gy).mean((1, 2, 3))
    root = torch.sqrt((jxx - jyy) ** 2 + 4 * jxy**2)
    return root / (jxx + jyy + 1e-6)


def descriptors(x: torch.Tensor) -> torch.Tensor:
    """Hand-made statistics of a Nx3xHxW batch in [0, 1] that name degradations (N x 16).

    Each is a classic cue, given to the network so it need not rediscover it from a few
    thousand examples: noise (median absolute Laplacian, Donoho-style), JPEG (blockiness on
    the 8-pixel grid, both directions), low resolution (how little a 4x down-and-up resample
    changes the image), blur (gradient energy, high-frequency ratio), motion vs defocus
    (structure-tensor coherence), darkness (mean and 95th percentile of V = max(R, G, B)),
    haze (dark-channel mean, saturation, contrast), rain (share of thin bright outliers).
    """
    g = _grey(x)
    h, w = g.shape[-2:]
    box3 = _box(g, 3)
    lap = g - box3
    noise = lap.abs().flatten(1).median(dim=1).values
    small = F.interpolate(g, size=(max(1, h // 4), max(1, w // 4)), mode="area")
    up = F.interpolate(small, size=(h, w), mode="bicubic", align_corners=False)
    resample = (g - up).abs().mean((1, 2, 3))
    grad = g.diff(dim=3)[..., :-1, :].abs() + g.diff(dim=2)[..., :, :-1].abs()
    high = lap.abs().mean((1, 2, 3)) / ((g - _box(g, 9)).abs().mean((1, 2, 3)) + 1e-4)
    value = x.amax(dim=1).flatten(1)
    dark_channel = min_filter(x.amin(dim=1, keepdim=True), 7)
    saturation = (x.amax(dim=1) - x.amin(dim=1)) / (x.amax(dim=1) + 1e-3)
    bright = (g - _box(g, 7)) > 0.08
    stats = [
        torch.log(noise + 1e-4),
        _blockiness(g, 3),
        _blockiness(g, 2),
        torch.log(resample + 1e-4),
        torch.log(grad.mean((1, 2, 3)) + 1e-4),
        torch.log(high + 1e-4),
        _coherence(g),
        _coherence(box3),
        value.mean(dim=1),
        *value.quantile(torch.tensor([0.95, 0.05], dtype=value.dtype, device=value.device), dim=1),
        dark_channel.mean((1, 2, 3)),
        saturation.mean((1, 2)),
        g.std(dim=(1, 2, 3)),
        bright.float().mean((1, 2, 3)),
        torch.log(lap.abs().mean((1, 2, 3)) + 1e-4),
    ]
    return torch.stack(stats, dim=1)


class PerceptionNetV2(nn.Module):
    """Perception v2: presence, severity and quality of an image from one trunk.

    A full-resolution stem (noise and JPEG blocks live in single pixels), four strided
    stages with batch normalisation (the plain stack of :class:`PerceptionNet` trained
    slowly and unstably on the corpus), global mean, max and standard-deviation pooling,
    the hand-made :func:`descriptors` (normalised), and a two-layer head with one output
    per target (see :mod:`tir_env.perception`).

    Args:
        outputs: Number of outputs.
        width: Channels of the first stage (doubled, then kept, in later stages).
        hidden: Width of the head's hidden layer.
    """

    def __init__(self, outputs: int = 18, width: int = 24, hidden: int = 128) -> None:
        super().__init__()

        def conv(cin: int, cout: int, stride: int = 1) -> list[nn.Module]:
            return [
                nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False),
                nn.BatchNorm2d(cout),
                nn.ReLU(inplace=True),
            ]

        layers = conv(3, width)
        previous = width
        for channels in (width, 2 * width, 4 * width, 4 * width):
            layers += conv(previous, channels, stride=2) + conv(channels, channels)
            previous = channels
        self.features = nn.Sequential(*layers)
        self.describe = nn.BatchNorm1d(N_DESCRIPTORS)
        self.head = nn.Sequential(
            nn.Linear(3 * previous + N_DESCRIPTORS, hidden),
            nn.ReLU(inplace=True),
            nn.Linear(hidden, outputs),
        )

    def forward(self, x: torch.Tensor, described: torch.Tensor | None = None) -> torch.Tensor:
        """Outputs (N x outputs) of a Nx3xHxW batch in [0, 1] (at least 32x32).

        ``described``: :func:`descriptors` of ``x`` if already computed (training caches them).
        """
        f = self.features(x - 0.5)
        pooled = [f.mean(dim=(2, 3)), f.amax(dim=(2, 3)), f.std(dim=(2, 3), correction=0)]
        stats = descriptors(x) if described is None else described
        return self.head(torch.cat([*pooled, self.describe(stats)], dim=1))


class PerceptionEnsemble(nn.Module):
    """Perception networks of different kinds read together: a weighted mean of their outputs.

    The statistics network and the CNN err differently (docs/perception.md, "A CNN trained
    on a GPU"), so their mean logit can be surer than either; or each output can come from
    the member that reads it best (one-hot ``weights``: a type from one network, the rest
    from another).

    Args:
        members: Networks mapping a Nx3xHxW batch in [0, 1] to N x outputs, all alike.
        weights: Per member, a weight for each output (members x outputs, each output's
            weights summing above 0); ``None``: the plain mean.

    Raises:
        ValueError: no member, or weights of the wrong shape, negative or all 0 for an output.
    """

    def __init__(
        self, members: Sequence[nn.Module], weights: Sequence[Sequence[float]] | None = None
    ) -> None:
        super().__init__()
        if not members:
            raise ValueError("a perception ensemble needs at least one member")
        self.members = nn.ModuleList(members)
        w = None if weights is None else torch.tensor(weights, dtype=torch.float32)
        if w is not None and (
            w.ndim != 2
            or w.shape[0] != len(members)
            or not torch.isfinite(w).all()
            or (w < 0).any()
        ):
            raise ValueError("ensemble weights: one row of finite, non-negative weights per member")
        if w is not None and (w.sum(0) <= 0).any():
            raise ValueError("ensemble weights: every output needs a member with weight above 0")
        # not saved with the weights: the record's architecture carries them (their width is
        # checked against the members' outputs at the first forward pass)
        self.output_weights: torch.Tensor | None
        self.register_buffer("output_weights", w, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The members' (weighted) mean raw outputs (N x outputs)."""
        outputs = torch.stack([m(x) for m in self.members])
        if self.output_weights is None:
            return outputs.mean(dim=0)
        if outputs.shape[-1] != self.output_weights.shape[1]:
            raise ValueError(
                f"ensemble weights for {self.output_weights.shape[1]} outputs, members give "
                f"{outputs.shape[-1]}"
            )
        w = self.output_weights[:, None, :]
        return (outputs * w).sum(dim=0) / w.sum(dim=0)


def _corr(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Pearson correlation of each pair of images in two batches (N)."""
    u, v = u.flatten(1), v.flatten(1)
    u, v = u - u.mean(1, keepdim=True), v - v.mean(1, keepdim=True)
    return (u * v).sum(1) / ((u.pow(2).sum(1) * v.pow(2).sum(1)).sqrt() + 1e-8)


def _gradient(g: torch.Tensor) -> torch.Tensor:
    gx = F.pad(g.diff(dim=3), (0, 1, 0, 0))
    gy = F.pad(g.diff(dim=2), (0, 0, 0, 1))
    return (gx * gx + gy * gy).sqrt()


def _clipped(x: torch.Tensor) -> torch.Tensor:
    return ((x <= 1 / 255) | (x >= 254 / 255)).float().mean((1, 2, 3))


def _saturation(x: torch.Tensor) -> torch.Tensor:
    return ((x.amax(1) - x.amin(1)) / (x.amax(1) + 1e-3)).mean((1, 2))


def change_features(before: torch.Tensor, after: torch.Tensor) -> torch.Tensor:
    """What a tool changed, as classic cues (N x :data:`N_CHANGE_FEATURES`).

    How much it moved (log MSE, mean shift per channel); contrast, fine- and mid-band detail
    and gradient energy after over before (log ratios); whether the removed part looks like
    the input's fine texture (noise removal: change anti-correlated with the input's
    high-pass) or its structure (edges lost: change concentrated on strong edges, gradients
    decorrelated); clipping and saturation shifts; the noise level (median absolute
    Laplacian) and brightness of both.
    """

    def log(t: torch.Tensor) -> torch.Tensor:
        return torch.log(t + 1e-4)

    def mean(t: torch.Tensor) -> torch.Tensor:
        return t.mean((1, 2, 3))

    gb, ga = _grey(before), _grey(after)
    d, gd = after - before, ga - gb
    hb, ha = gb - _box(gb, 3), ga - _box(ga, 3)
    mb, ma = gb - _box(gb, 9), ga - _box(ga, 9)
    grad_b, grad_a = _gradient(gb), _gradient(ga)
    edge = (grad_b > grad_b.flatten(1).quantile(0.8, dim=1)[:, None, None, None]).float()
    moved = gd.abs()
    on_edges = (moved * edge).sum((1, 2, 3)) / (edge.sum((1, 2, 3)) + 1)
    off_edges = (moved * (1 - edge)).sum((1, 2, 3)) / ((1 - edge).sum((1, 2, 3)) + 1)
    stats = [
        log(d.pow(2).mean((1, 2, 3))),
        *d.mean((2, 3)).T,
        log(ga.std((1, 2, 3))) - log(gb.std((1, 2, 3))),
        log(mean(ha.abs())) - log(mean(hb.abs())),
        log(mean(ma.abs())) - log(mean(mb.abs())),
        _corr(gd, hb),
        _corr(gd, ha),
        _corr(gd - _box(gd, 3), hb),
        _clipped(after) - _clipped(before),
        _saturation(after) - _saturation(before),
        _corr(grad_a, grad_b),
        _corr(moved, grad_b),
        log(on_edges) - log(off_edges),
        log(mean(grad_a)) - log(mean(grad_b)),
        log(hb.abs().flatten(1).median(1).values),
        log(ha.abs().flatten(1).median(1).values),
        mean(gb),
        mean(ga),
        log(mean((gd - _box(gd, 3)).abs())),
        log(mean(_box(gd, 9).abs())),
    ]
    return torch.stack(stats, dim=1)


#: Columns of :func:`change_features`.
N_CHANGE_FEATURES = 22
#: Columns of :func:`gain_features`: both images' descriptors, their difference, the change.
N_GAIN_FEATURES = 3 * N_DESCRIPTORS + N_CHANGE_FEATURES


def gain_features(
    before: torch.Tensor,
    after: torch.Tensor,
    described: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> torch.Tensor:
    """Features of a (before, after) pair of same-size Nx3xHxW batches (N x N_GAIN_FEATURES)."""
    d_b, d_a = (descriptors(before), descriptors(after)) if described is None else described
    return torch.cat([d_b, d_a, d_a - d_b, change_features(before, after)], dim=1)


def ensemble_member(inputs: int, hidden: int, outputs: int) -> nn.Sequential:
    """One MLP of a feature ensemble: two hidden ReLU layers, dropout after the first."""
    return nn.Sequential(
        nn.Linear(inputs, hidden),
        nn.ReLU(inplace=True),
        nn.Dropout(0.1),
        nn.Linear(hidden, hidden),
        nn.ReLU(inplace=True),
        nn.Linear(hidden, outputs),
    )


class QualityGainNet(nn.Module):
    """The PSNR change from ``before`` to ``after`` (:mod:`tir_env.quality_gain`).

    An ensemble of small MLPs over :func:`gain_features` (standardised with the training
    set's mean and spread, kept as buffers), averaged. A convolutional network on the image
    pair trained on the same data ranked candidates worse on the validation photos than
    these features do (docs/quality_gain.md): 23 training photos do not teach a CNN what a
    harmful change looks like, classic cues do.

    Args:
        hidden: Width of each member's two hidden layers.
        members: Number of MLPs averaged.
    """

    center: torch.Tensor
    spread: torch.Tensor

    def __init__(self, hidden: int = 128, members: int = 3) -> None:
        super().__init__()
        self.register_buffer("center", torch.zeros(N_GAIN_FEATURES))
        self.register_buffer("spread", torch.ones(N_GAIN_FEATURES))
        self.members = nn.ModuleList(
            ensemble_member(N_GAIN_FEATURES, hidden, 1) for _ in range(members)
        )

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """Predicted PSNR change / 10 (N) of :func:`gain_features` rows (mean of the members)."""
        x = (features - self.center) / self.spread
        return torch.stack([m(x)[:, 0] for m in self.members]).mean(dim=0)


def count_parameters(net: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in net.parameters() if p.requires_grad)
