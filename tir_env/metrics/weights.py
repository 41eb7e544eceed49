"""Where metric weights live, which files each metric needs, and a guard against downloads.

TIR never downloads weights. A metric that needs weight files reads them from one folder,
laid out like ``$TORCH_HOME`` so an existing pyiqa/torchvision cache can be used as is::

    <weights dir>/hub/pyiqa/<file>        pyiqa's own checkpoints
    <weights dir>/hub/checkpoints/<file>  torchvision ImageNet backbones
    <weights dir>/hub/clip/<file>         OpenAI CLIP archives (SHA-256 checked by pyiqa)

The folder is, in order: the ``weights_dir`` argument, the ``TIR_WEIGHTS_DIR`` environment
variable, else ``$TORCH_HOME`` (default ``~/.cache/torch``), where pyiqa and torchvision put
their downloads. Before a weighted metric is built, :func:`check_weights` verifies that every
file of :data:`REQUIRED_WEIGHTS` is present and raises
:class:`~tir_env.errors.WeightsNotFoundError` naming the file, its full expected path and the
variable to set. Creation then runs inside :func:`offline_hub`, which points torch hub at the
folder, sets ``HF_HUB_OFFLINE=1`` and turns any download attempt into the same error.
"""

from __future__ import annotations

import contextlib
import os
import threading
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from tir_env.errors import WeightsNotFoundError
from tir_env.files import environ_set

ENV_VAR = "TIR_WEIGHTS_DIR"

_PYIQA_URL = "https://huggingface.co/chaofengc/IQA-PyTorch-Weights/resolve/main/"
_TV_URL = "https://download.pytorch.org/models/"
_CLIP_URL = "https://openaipublic.azureedge.net/clip/models/"


@dataclass(frozen=True)
class WeightFile:
    """One weight file a metric loads.

    Attributes:
        folder: Sub-folder of ``<weights dir>/hub`` it is looked up in.
        filename: Exact file name (pyiqa keeps URL-encoding, e.g. ``%2B`` for ``+``).
        url: Where to get it on a machine with network access.
        size: Approximate size, for the docs.
        what: What the file is.
    """

    folder: Literal["pyiqa", "checkpoints", "clip"]
    filename: str
    url: str
    size: str
    what: str

    @property
    def relpath(self) -> str:
        """Path relative to the weights folder, e.g. ``hub/pyiqa/x.pth``."""
        return f"hub/{self.folder}/{self.filename}"


def _pyiqa(filename: str, size: str, what: str) -> WeightFile:
    return WeightFile("pyiqa", filename, _PYIQA_URL + filename, size, what)


_ALEXNET = WeightFile(
    "checkpoints",
    "alexnet-owt-7be5be79.pth",
    _TV_URL + "alexnet-owt-7be5be79.pth",
    "233 MiB",
    "torchvision AlexNet, ImageNet (IMAGENET1K_V1)",
)
_VGG16 = WeightFile(
    "checkpoints",
    "vgg16-397923af.pth",
    _TV_URL + "vgg16-397923af.pth",
    "528 MiB",
    "torchvision VGG16, ImageNet (IMAGENET1K_V1)",
)
_CLIP_RN50 = WeightFile(
    "clip",
    "RN50.pt",
    _CLIP_URL + "afeb0e10f9e5a86da6080e35cf09123aca3b358a0c3e3b6c78a7b63bc04b6762/RN50.pt",
    "244 MiB",
    "OpenAI CLIP RN50 TorchScript archive; must be the genuine file (SHA-256 checked)",
)

#: Registry name -> every file the metric loads. The single source for checks and docs.
REQUIRED_WEIGHTS: dict[str, tuple[WeightFile, ...]] = {
    "lpips": (
        _ALEXNET,
        _pyiqa(
            "LPIPS_v0.1_alex-df73285e.pth",
            "6 KiB",
            "LPIPS v0.1 linear layers (same as lpips/weights/v0.1/alex.pth in the lpips wheel)",
        ),
    ),
    "dists": (
        _VGG16,
        _pyiqa(
            "DISTS_weights-f5e65c96.pth",
            "12 KiB",
            "DISTS alpha/beta (torchmetrics' dists_models/weights.pt loads identically)",
        ),
    ),
    "musiq": (_pyiqa("musiq_koniq_ckpt-e95806b9.pth", "104 MiB", "MUSIQ trained on KonIQ-10k"),),
    "clipiqa": (_CLIP_RN50,),
    "topiq_nr": (
        _pyiqa(
            "cfanet_nr_koniq_res50-9a73138b.pth",
            "173 MiB",
            "TOPIQ-NR (CFANet) on KonIQ-10k, ResNet-50 backbone included",
        ),
    ),
    "maniqa": (
        _pyiqa(
            "ckpt_koniq10k.pt",
            "518 MiB",
            "MANIQA on KonIQ-10k, ViT-B/8 backbone included",
        ),
    ),
    "brisque": (
        _pyiqa(
            "brisque_svm_weights.pth",
            "small",
            "BRISQUE SVM (sv_coef, sv) from the official MATLAB release",
        ),
    ),
}


def resolve_weights_dir(weights_dir: str | Path | None = None) -> Path:
    """The weights folder: the argument, else ``$TIR_WEIGHTS_DIR``, else ``$TORCH_HOME``."""
    if weights_dir is not None:
        return Path(weights_dir).expanduser()
    if os.environ.get(ENV_VAR):
        return Path(os.environ[ENV_VAR]).expanduser()
    if os.environ.get("TORCH_HOME"):
        return Path(os.environ["TORCH_HOME"]).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME", "~/.cache")
    return Path(cache, "torch").expanduser()


def missing_weights(name: str, weights_dir: str | Path | None = None) -> list[WeightFile]:
    """The files of metric ``name`` absent from the weights folder (empty: all present)."""
    root = resolve_weights_dir(weights_dir)
    return [f for f in REQUIRED_WEIGHTS.get(name, ()) if not (root / f.relpath).is_file()]


def check_weights(name: str, weights_dir: str | Path | None = None) -> Path:
    """Verify every weight file of ``name`` is present; return the weights folder.

    Raises:
        WeightsNotFoundError: a file is missing; the message names each missing file, its full
            expected path, where to download it, and the variable that sets the folder.
    """
    root = resolve_weights_dir(weights_dir)
    missing = missing_weights(name, root)
    if missing:
        raise WeightsNotFoundError(_missing_message(name, root, missing))
    return root


def _missing_message(name: str, root: Path, missing: list[WeightFile]) -> str:
    lines = [f"metric {name!r} needs weight files that are missing from {root}:"]
    for f in missing:
        lines.append(f"  - {f.filename} ({f.what}, {f.size}): expected at {root / f.relpath}")
        lines.append(f"    get it from {f.url}")
    lines.append(
        f"Copy the files there, or set {ENV_VAR} (or pass weights_dir=) to a folder laid out as "
        "hub/pyiqa/, hub/checkpoints/, hub/clip/. TIR never downloads weights."
    )
    return "\n".join(lines)


_HUB_LOCK = threading.RLock()


@contextlib.contextmanager
def offline_hub(metric: str, weights_dir: Path | None) -> Iterator[None]:
    """Build a pyiqa metric with no network: hub dirs at ``weights_dir``, downloads forbidden.

    Inside the block, ``torch.hub.get_dir()`` and pyiqa's cache dir point at
    ``weights_dir/hub`` (when given), ``HF_HUB_OFFLINE=1``, and every download entry point
    pyiqa reaches (``torch.hub.download_url_to_file``, pyiqa's copy of it, and
    ``urllib.request.urlopen`` used by its CLIP loader) raises
    :class:`~tir_env.errors.WeightsNotFoundError` instead. Process-global state is changed
    for the duration, under a lock, and restored afterwards.
    """
    import torch.hub
    from pyiqa.utils import download_util

    def refuse(url: Any, dst: Any = None, *args: Any, **kwargs: Any) -> None:
        where = f" to {dst}" if dst is not None else ""
        raise WeightsNotFoundError(
            f"metric {metric!r} tried to download {getattr(url, 'full_url', url)}{where}; "
            f"TIR never downloads. Put the file in the weights folder "
            f"({weights_dir or 'set ' + ENV_VAR}); see docs/metrics.md for the layout."
        )

    patches: list[tuple[object, str, object]] = [
        (torch.hub, "download_url_to_file", refuse),
        (download_util, "download_url_to_file", refuse),
        (urllib.request, "urlopen", refuse),
    ]
    if weights_dir is not None:
        patches.append((download_util, "DEFAULT_CACHE_DIR", str(weights_dir / "hub" / "pyiqa")))
    with _HUB_LOCK, environ_set("HF_HUB_OFFLINE", "1"), hf_offline():
        old_hub = torch.hub.get_dir()
        saved = [(obj, attr, getattr(obj, attr)) for obj, attr, _ in patches]
        try:
            for obj, attr, value in patches:
                setattr(obj, attr, value)
            if weights_dir is not None:
                torch.hub.set_dir(str(weights_dir / "hub"))
            yield
        finally:
            torch.hub.set_dir(old_hub)
            for obj, attr, value in saved:
                setattr(obj, attr, value)


@contextlib.contextmanager
def hf_offline() -> Iterator[None]:
    """The Hugging Face Hub offline inside the block (its constant, read once at its import)."""
    try:
        from huggingface_hub import constants
    except ImportError:  # pragma: no cover - huggingface_hub comes with pyiqa
        yield
        return
    old = constants.HF_HUB_OFFLINE
    constants.HF_HUB_OFFLINE = True
    try:
        yield
    finally:
        constants.HF_HUB_OFFLINE = old


def weights_table_markdown() -> str:
    """The metric -> weight-file table of ``docs/metrics.md``, generated from the table."""
    rows = ["| metric | file | put it at | size | what | source |", "|---|---|---|---|---|---|"]
    for name, files in REQUIRED_WEIGHTS.items():
        for f in files:
            rows.append(
                f"| {name} | `{f.filename}` | `$TIR_WEIGHTS_DIR/{f.relpath}` | {f.size} | "
                f"{f.what} | <{f.url}> |"
            )
    return "\n".join(rows)
