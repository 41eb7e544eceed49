"""``tone_dehaze``: haze removal as one global contrast and level change, read by boosted trees.

The suites' haze (the scattering model over a smooth depth,
:class:`~tir_env.degradations.agenticir.Haze`)
is, across a 128 px crop, close to one affine map of the intensities: ``I = t J + A (1 - t)``
with ``t`` nearly constant. Undoing it needs two numbers, the clean image's mean level and its
contrast, which the dark channel prior (``dark_channel_prior``, ``global_dehaze``) guesses from
the darkest pixels and the learned dehazer (``learned_dehazing``) from its training crops. This
tool reads them from the image's global statistics instead (per-channel intensity quantiles,
saturation, the top, middle and bottom thirds' levels, gradients: :func:`tone_features`) with
two boosted-tree regressions fitted on crops of the corpus' train photos degraded as the env
degrades them, clean crops and crops without haze among them (``python -m
benchmarks.train_tone_dehaze``): the change of the luminance mean and of its log standard
deviation from the input to the clean image. The output is the input with that change applied
to every channel: ``out = (x - m) * exp(ds) + m + dm``, ``m`` the input's mean luminance.

Because crops without haze were among its examples, on most images without haze it changes
little (a false call costs about 1 dB on average on the val photos' crops, the learned
dehazer's about 7 dB), which is what lets an agent call it on a weaker reading of haze; on a
photo misty by nature it removes the fog the clean photo has (about 15 dB there). Measured,
with two failed rules for ``fixed``, in docs/agents.md, "A dehazer that reads the tone".
``strength`` scales both changes (0: the input unchanged).

The trees are stored as :class:`~tir_env.quality_trees.TreeEnsemble` arrays, ``mean.*`` and
``contrast.*``, in ``tone_dehaze.safetensors`` of the learned-weights folder; the tool joins the
registry when that file is there.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping

import numpy as np
import torch

from tir_env.errors import CheckpointError, WeightsNotFoundError
from tir_env.quality_trees import TreeEnsemble, from_tensors
from tir_env.tools.base import Tool, ToolInfo, register_tool, spec
from tir_env.tools.learned.weights import load_state, weights_path
from tir_env.types import Param

#: Stem of the weights file and its record.
NAME = "tone_dehaze"
#: The two ensembles in the file: the luminance mean's change and the log contrast's.
HEADS = ("mean", "contrast")
#: The optional third: a classifier of haze (its logit) over the statistics and perception's
#: haze logit, :func:`haze_reading`.
HAZE_HEAD = "haze"
#: Quantiles read of each channel (and of the channels' min, max and mean).
QUANTILES = np.array([0.0, 0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.999, 1.0])
#: Features per image: 6 x 13 quantiles, 3 saturation quantiles, 3 thirds x 3, 3 gradients.
N_FEATURES = 6 * len(QUANTILES) + 3 + 9 + 3
#: Added to the standard deviation before its log (a flat image has none).
STD_FLOOR = 1e-3
#: Images above this many pixels are read on a strided subsample (quantiles need no more).
MAX_READ_PIXELS = 1 << 20
#: The command that fits the trees (what to run when the file is missing or unusable).
FIT_COMMAND = "python -m benchmarks.train_tone_dehaze"


def _thin(image: np.ndarray) -> np.ndarray:
    """``image`` (3xHxW) strided so it holds at most :data:`MAX_READ_PIXELS` pixels."""
    h, w = image.shape[1:]
    step = max(1, int(np.ceil(np.sqrt(h * w / MAX_READ_PIXELS))))
    while -(-h // step) * -(-w // step) > MAX_READ_PIXELS:  # a strip, or rounded up too little
        step += 1
    return image if step <= 1 else image[:, ::step, ::step]


def tone_features(image: torch.Tensor) -> np.ndarray:
    """The :data:`N_FEATURES` statistics of one 3xHxW image in [0, 1] that the trees read."""
    x = _thin(image.detach().to(torch.float32).cpu().numpy())
    low, high, grey = x.min(axis=0), x.max(axis=0), x.mean(axis=0)
    planes = (x[0], x[1], x[2], low, high, grey)
    feats = [np.quantile(p, QUANTILES) for p in planes]
    saturation = (high - low) / np.maximum(high, 1e-3)
    feats.append(np.quantile(saturation, [0.1, 0.5, 0.9]))
    thirds = np.array_split(np.arange(x.shape[1]), 3)
    for rows in thirds:  # haze grows with distance: the top of a photo is hazier
        part = x[:, rows]
        darkest = float(np.quantile(part.min(axis=0), 0.02)) if part.size else 0.0
        feats.append(
            np.array([darkest, part.mean() if part.size else 0.0, part.std() if part.size else 0.0])
        )
    dy = np.abs(np.diff(grey, axis=0)).mean() if grey.shape[0] > 1 else 0.0
    dx = np.abs(np.diff(grey, axis=1)).mean() if grey.shape[1] > 1 else 0.0
    feats.append(np.array([dy, dx, grey.std()]))
    return np.concatenate([np.ravel(f) for f in feats]).astype(np.float64)


def at_size(batch: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """``batch`` (Nx3xHxW) at ``size`` as the trees' examples were made: bicubic, clamped.

    Plain bicubic (:func:`torch.nn.functional.interpolate`), not the antialiased
    :func:`tir_env.images.resize`, whose kernel differs even when upsampling: a reading of a
    low-resolution input must see what the fit saw (``benchmarks.train_tone_dehaze``).
    """
    size = (int(size[0]), int(size[1]))
    if tuple(batch.shape[-2:]) == size:
        return batch
    out = torch.nn.functional.interpolate(batch, size=size, mode="bicubic", align_corners=False)
    return out.clamp(0.0, 1.0)


def luminance_level(batch: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per image: the mean of the channel mean and the log of its standard deviation."""
    grey = batch.mean(dim=1).flatten(1).to(torch.float64)
    return grey.mean(dim=1), torch.log(grey.std(dim=1, correction=0) + STD_FLOOR)


def apply_change(
    batch: torch.Tensor, mean_change: torch.Tensor, log_contrast: torch.Tensor
) -> torch.Tensor:
    """``(x - m) * exp(log_contrast) + m + mean_change`` per image, clamped to [0, 1].

    The changes (read on the CPU) may be on another device than ``batch``; the result is on
    ``batch``'s.
    """
    level, _ = luminance_level(batch)
    shape = (-1, 1, 1, 1)
    m = level.to(batch.dtype).reshape(shape)
    gain = torch.exp(log_contrast).to(batch.device, batch.dtype).reshape(shape)
    shift = mean_change.to(batch.device, batch.dtype).reshape(shape)
    return ((batch - m) * gain + m + shift).clamp(0.0, 1.0)


def read_trees(state: Mapping[str, torch.Tensor], source: str) -> dict[str, TreeEnsemble]:
    """The heads of a saved file (arrays prefixed ``mean.``, ``contrast.`` and ``haze.``).

    The haze head is optional (files fitted without ``--haze-head`` lack it).

    Raises:
        CheckpointError: ``mean`` or ``contrast`` is missing, or a head is not a usable tree
            ensemble (:func:`checked_trees`); the message names the command that refits them.
    """
    heads = {}
    for head in (*HEADS, HAZE_HEAD):
        part = {k[len(head) + 1 :]: v for k, v in state.items() if k.startswith(f"{head}.")}
        if not part and head == HAZE_HEAD:
            continue
        if not part:
            raise CheckpointError(f"{source}: no {head!r} trees in it (refit: {FIT_COMMAND})")
        heads[head] = checked_trees(part, f"{source} ({head})", N_FEATURES + (head == HAZE_HEAD))
    return heads


def checked_trees(part: Mapping[str, torch.Tensor], source: str, n_features: int) -> TreeEnsemble:
    """One head's ensemble, checked where :func:`~tir_env.quality_trees.from_tensors` is not.

    Raises:
        CheckpointError: an array is missing, empty or of the wrong kind, the trees read
            another number of features than ``n_features``, a node reads a feature outside a
            row, links to itself or an earlier node (a walk that never ends), or a leaf or
            the baseline is not finite; the message names the command that refits them.
    """
    try:
        trees = from_tensors(dict(part), source)
    except CheckpointError as err:
        raise CheckpointError(f"{err} (refit: {FIT_COMMAND})") from err
    except (IndexError, TypeError, ValueError, RuntimeError) as err:  # an empty or odd array
        raise CheckpointError(f"{source}: unreadable trees: {err} (refit: {FIT_COMMAND})") from err
    fault = _fault(trees, n_features)
    if fault is not None:
        raise CheckpointError(f"{source}: {fault} (refit: {FIT_COMMAND})")
    return trees


def _fault(trees: TreeEnsemble, n_features: int) -> str | None:
    """What makes ``trees`` unusable for rows of ``n_features``, or ``None``."""
    if trees.n_features != n_features:
        return f"its trees read {trees.n_features} features, this code makes {n_features}"
    links = (trees.feature, trees.left, trees.right, trees.roots)
    if any(a.ndim != 1 or not np.issubdtype(a.dtype, np.integer) for a in links):
        return "its node indices are not integer arrays"
    if ((trees.feature < 0) | (trees.feature >= n_features)).any():  # leaves' are read too
        return f"a node reads a feature outside the {n_features} of a row"
    inner = np.flatnonzero(~trees.leaf)
    if ((trees.left[inner] <= inner) | (trees.right[inner] <= inner)).any():
        return "a node links to itself or an earlier node (its walk would not end)"
    if not (np.isfinite(trees.value[trees.leaf]).all() and np.isfinite(trees.baseline)):
        return "a leaf value or the baseline is not finite"
    return None


def tensors_of(heads: Mapping[str, TreeEnsemble]) -> dict[str, torch.Tensor]:
    """The arrays to save, each head's prefixed with its name."""
    return {f"{h}.{k}": v for h, trees in heads.items() for k, v in trees.tensors().items()}


def logit(p: float) -> float:
    """The log-odds of ``p``, clipped to +-9.2 (p within 1e-4 of 0 or 1)."""
    q = min(max(p, 1e-4), 1.0 - 1e-4)
    return float(np.log(q / (1.0 - q)))


def haze_row(image: torch.Tensor, perceived_haze: float) -> np.ndarray:
    """The haze head's input: the statistics of ``image`` (3xHxW) and perception's logit."""
    return np.append(tone_features(image), logit(perceived_haze))


class ToneDehaze(Tool):
    """Dehazing as one global level and contrast change read by boosted trees (see module)."""

    batch_params = frozenset({"strength"})
    info = ToolInfo(
        name=NAME,
        task="dehazing",
        kind="learned",
        params=spec(strength=Param(0.0, 1.5, 1.0, "share of the predicted change applied")),
        cost_hint=0.3,
        description=(
            "Global level and contrast change predicted from the image's statistics by boosted "
            "trees; leaves a haze-free image nearly as it is."
        ),
    )

    def __init__(self) -> None:
        self._heads: dict[str, TreeEnsemble] | None = None
        self._lock = threading.Lock()

    @classmethod
    def availability(cls) -> str | None:
        """``None`` when the trees file exists, else why the tool cannot run."""
        path = weights_path(NAME)
        return None if path.is_file() else f"weights not found: {path}"

    def heads(self) -> dict[str, TreeEnsemble]:
        """The two ensembles, read once.

        Raises:
            WeightsNotFoundError: the file is missing.
            CheckpointError: it is unreadable or not this tool's trees.
        """
        with self._lock:
            if self._heads is None:
                path = weights_path(NAME)
                if not path.is_file():
                    raise WeightsNotFoundError(
                        f"{NAME} trees not found: {path}. Fit them with `{FIT_COMMAND} --out "
                        f"{path.name}` and put the file in the learned-weights folder (or point "
                        f"$TIR_LEARNED_WEIGHTS at a folder holding it)."
                    )
                try:
                    state = load_state(path)
                except CheckpointError as err:
                    raise CheckpointError(f"{err} (refit: {FIT_COMMAND})") from err
                self._heads = read_trees(state, str(path))
            return self._heads

    def haze_probability(self, image: torch.Tensor, perceived_haze: float) -> float:
        """The haze head's probability that ``image`` (3xHxW, at its size to be) is hazy.

        ``perceived_haze``: perception's reading of the same image.

        Raises:
            CheckpointError: the trees file has no haze head (fit with ``--haze-head``).
        """
        heads = self.heads()
        if HAZE_HEAD not in heads:
            raise CheckpointError(
                f"{weights_path(NAME)}: no haze head (refit: {FIT_COMMAND} --haze-head)"
            )
        z = float(heads[HAZE_HEAD].predict(haze_row(image, perceived_haze)[None])[0])
        return float(1.0 / (1.0 + np.exp(-z)))

    def predict(self, batch: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Per image, the predicted change of the luminance mean and of its log contrast."""
        heads = self.heads()
        rows = np.stack([tone_features(image) for image in batch])
        mean_change = torch.from_numpy(heads["mean"].predict(rows))
        log_contrast = torch.from_numpy(heads["contrast"].predict(rows))
        return mean_change, log_contrast

    def apply(self, batch: torch.Tensor, params: Mapping[str, float]) -> torch.Tensor:
        """Apply ``strength`` times the predicted change to every image of the batch."""
        mean_change, log_contrast = self.predict(batch)
        strength = torch.as_tensor(params["strength"], dtype=torch.float64).flatten()
        strength = strength.expand(batch.shape[0]) if strength.numel() == 1 else strength
        return apply_change(batch, mean_change * strength, log_contrast * strength)


# Joins the registry (and the learned and full toolboxes) once its trees ship.
if weights_path(NAME).is_file():
    register_tool(ToneDehaze)
