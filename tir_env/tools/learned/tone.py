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

from tir_env.errors import CheckpointError
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


def _thin(image: np.ndarray) -> np.ndarray:
    """``image`` (3xHxW) strided so it holds at most :data:`MAX_READ_PIXELS` pixels."""
    step = int(np.ceil(np.sqrt(image.shape[1] * image.shape[2] / MAX_READ_PIXELS)))
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


def luminance_level(batch: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per image: the mean of the channel mean and the log of its standard deviation."""
    grey = batch.mean(dim=1).flatten(1).to(torch.float64)
    return grey.mean(dim=1), torch.log(grey.std(dim=1, correction=0) + STD_FLOOR)


def apply_change(
    batch: torch.Tensor, mean_change: torch.Tensor, log_contrast: torch.Tensor
) -> torch.Tensor:
    """``(x - m) * exp(log_contrast) + m + mean_change`` per image, clamped to [0, 1]."""
    level, _ = luminance_level(batch)
    shape = (-1, 1, 1, 1)
    m = level.to(batch.dtype).reshape(shape)
    gain = torch.exp(log_contrast).to(batch.dtype).reshape(shape)
    return ((batch - m) * gain + m + mean_change.to(batch.dtype).reshape(shape)).clamp(0.0, 1.0)


def read_trees(state: Mapping[str, torch.Tensor], source: str) -> dict[str, TreeEnsemble]:
    """The heads of a saved file (arrays prefixed ``mean.``, ``contrast.`` and ``haze.``).

    The haze head is optional (files fitted without ``--haze-head`` lack it).

    Raises:
        CheckpointError: ``mean`` or ``contrast`` is missing, a head is not a tree ensemble, or
            reads another number of features than this code makes (refit: ``python -m
            benchmarks.train_tone_dehaze``).
    """
    heads = {}
    for head in (*HEADS, HAZE_HEAD):
        part = {k[len(head) + 1 :]: v for k, v in state.items() if k.startswith(f"{head}.")}
        if not part and head == HAZE_HEAD:
            continue
        if not part:
            raise CheckpointError(f"{source}: no {head!r} trees in it")
        trees = from_tensors(part, f"{source} ({head})")
        expected = N_FEATURES + (head == HAZE_HEAD)
        if trees.n_features != expected:
            raise CheckpointError(
                f"{source}: its {head} trees read {trees.n_features} features, this code makes "
                f"{expected} (refit: python -m benchmarks.train_tone_dehaze)"
            )
        heads[head] = trees
    return heads


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
            CheckpointError: it is not this tool's trees.
        """
        with self._lock:
            if self._heads is None:
                path = weights_path(NAME)
                self._heads = read_trees(load_state(path), str(path))
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
                f"{weights_path(NAME)}: no haze head (refit: python -m "
                "benchmarks.train_tone_dehaze --haze-head)"
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
