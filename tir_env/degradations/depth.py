"""Depth maps for haze: a folder of maps, a local depth-estimation model, or the proxy.

Haze follows the atmospheric scattering model ``I = J t + A (1 - t)``, ``t = exp(-beta d)``
(:class:`tir_env.degradations.agenticir.Haze`). The depth ``d`` comes from one of three sources,
chosen by :class:`DepthSource` (``EnvConfig.depth``, ``tir bench --depth``):

``proxy``
    :func:`~tir_env.degradations.synthesis.depth_proxy` (row ramp + blurred luminance) of the
    image being hazed. No files needed; much heavier haze than MiO100 (mean depth about 0.63
    against 0.29 on AgenticIR's example).
``folder:DIR``
    One map per clean image, matched by file stem (:func:`find_depth_file`): ``<stem>.npy``
    (any float or integer array), ``<stem>.png`` (8- or 16-bit greyscale; a colour PNG uses its
    first channel) or AgenticIR's own layout ``<stem>/predict_depth.mat`` (MATLAB, key
    ``data_obj``). Values are depth: larger = farther.
``model:DIR``
    A ``transformers`` depth-estimation model saved in ``DIR`` (``AutoModelForDepthEstimation``
    and its image processor: Depth Anything, DPT). Loaded from that folder only, never
    downloaded. Run once per clean photo and cached (:func:`model_depth`).

Convention (AgenticIR ``dataset/add_single_degradation.py: add_haze``): a depth map is
resized to the clean photo with bicubic interpolation and divided by its maximum, so
``d`` lies in ``(0, 1]`` with **1 = the farthest point and small values = near**; the nearest
pixels keep a little haze, as in MiO100 (AgenticIR's example map spans 0.09 to 1, mean 0.29).

A model that predicts *relative inverse depth* (disparity ``s``, larger = nearer: Depth
Anything's relative checkpoints, DPT/MiDaS) is turned into depth by inverting it:
``d = f / max(s / max(s), f)`` with ``f = DISPARITY_FLOOR = 0.1``. Depth is proportional to
``1 / s``, and disparities below a tenth of the nearest one (the sky, where ``s`` reaches 0)
are clipped, so the farthest depth is 10 times the nearest: the nearest pixel gets
``d = 0.1``, the sky ``d = 1`` (AgenticIR's example map spans a factor 11). A checkpoint whose
config says ``depth_estimation_type="metric"`` (Depth Anything metric) already predicts depth
and is only divided by its maximum.

The map is computed once on the whole photo; a training crop takes the same window of the
whole-photo map (:func:`tir_env.data.crop`), never a map predicted on the crop and never
re-normalised, so a crop is hazed exactly like that part of the whole photo.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import cv2
import numpy as np

from tir_env.errors import DepthError
from tir_env.types import ImageU8

log = logging.getLogger(__name__)

DepthKind = Literal["proxy", "folder", "model"]
MissingDepth = Literal["error", "proxy"]
DepthMap = np.ndarray  # float32 HxW in [0, 1], 1 = farthest

#: Disparities below this fraction of the largest are clipped when inverted (far/near = 10).
DISPARITY_FLOOR = 0.1
#: Depth files looked up per image, in this order (``{stem}`` is the image's file stem).
DEPTH_FILES: tuple[str, ...] = ("{stem}.npy", "{stem}.png", "{stem}/predict_depth.mat")
#: Files a model folder must hold (one weights file of the two).
MODEL_FILES: tuple[str, ...] = ("config.json", "preprocessor_config.json")
MODEL_WEIGHTS: tuple[str, ...] = ("model.safetensors", "pytorch_model.bin")
#: Depth maps kept in memory (one per photo and source); a 1536 px map is about 9 MB.
CACHE_SIZE = 16


@dataclass(frozen=True)
class DepthSource:
    """Where haze takes its depth map from (see the module docstring).

    Attributes:
        kind: ``"proxy"`` (computed from the image), ``"folder"`` or ``"model"``.
        path: The folder of depth maps or the model folder (``None`` for the proxy).
        missing: For ``folder``: what an image without a depth file gets, ``"error"``
            (:class:`~tir_env.errors.DepthError`) or ``"proxy"`` (named in the record).
        cache_dir: For ``model``: also keep predicted maps on disk here, keyed by image hash
            and model (``None``: memory only).
    """

    kind: DepthKind = "proxy"
    path: Path | None = None
    missing: MissingDepth = "error"
    cache_dir: Path | None = None

    def __post_init__(self) -> None:
        if self.kind not in ("proxy", "folder", "model"):
            raise DepthError(f"depth kind must be proxy, folder or model, got {self.kind!r}")
        if (self.kind == "proxy") != (self.path is None):
            raise DepthError(f"depth {self.kind!r} needs a path exactly when it is not the proxy")
        if self.missing not in ("error", "proxy"):
            raise DepthError(f"depth 'missing' must be 'error' or 'proxy', got {self.missing!r}")

    @classmethod
    def parse(cls, spec: str | DepthSource) -> DepthSource:
        """``"proxy"``, ``"folder:DIR"`` or ``"model:DIR"`` (a :class:`DepthSource` passes).

        Raises:
            DepthError: any other text.
        """
        if isinstance(spec, DepthSource):
            return spec
        kind, _, path = str(spec).partition(":")
        if kind == "proxy" and not path:
            return cls()
        if kind in ("folder", "model") and path:
            return cls(kind, Path(path).expanduser())  # type: ignore[arg-type]
        raise DepthError(
            f"depth source {spec!r} is not one of 'proxy', 'folder:DIR' (depth maps named like "
            "the clean images) or 'model:DIR' (a local transformers depth model)"
        )

    @property
    def spec(self) -> str:
        """The source as text (``"folder:/data/depth"``)."""
        return "proxy" if self.path is None else f"{self.kind}:{self.path}"


class DepthProvider:
    """Depth maps of whole clean photos from one :class:`DepthSource`, cached in memory.

    Build with :func:`depth_provider`, which checks the folder now (fail early), not at the
    first hazy episode.
    """

    def __init__(self, source: DepthSource, device: str = "cpu") -> None:
        self.source = source
        self.device = device
        if source.path is not None and not source.path.is_dir():
            what = "depth-map folder" if source.kind == "folder" else "depth model folder"
            raise DepthError(f"{what} not found: {source.path}{_expected(source.kind)}")
        if source.kind == "model":
            check_model_dir(source.path)  # type: ignore[arg-type]

    @property
    def label(self) -> str:
        """``"proxy"``, ``"folder"`` or ``"model:<folder name>"``: what records name."""
        if self.source.kind == "model":
            return f"model:{self.source.path.name}"  # type: ignore[union-attr]
        return self.source.kind

    def depth(self, image_id: str, photo: ImageU8) -> tuple[DepthMap | None, str]:
        """The depth map of a whole clean photo and the label of its source.

        Returns:
            ``(map, label)``: an HxW float32 map in [0, 1] (1 = farthest) at the photo's size,
            or ``(None, "proxy")`` when haze should use the proxy.

        Raises:
            DepthError: a folder has no map for this image (and ``missing="error"``), a map
                cannot be read, or the model does not load.
        """
        path = self.source.path
        if path is None:
            return None, "proxy"
        if self.source.kind == "folder":
            return self._folder_depth(path, image_id, photo)
        model_id, digest = model_key(path), photo_digest(photo)
        depth = _cached(("model", model_id, digest), lambda: self._predict(photo, model_id, digest))
        return depth, self.label

    def _folder_depth(
        self, root: Path, image_id: str, photo: ImageU8
    ) -> tuple[DepthMap | None, str]:
        path = find_depth_file(root, image_id)
        if path is None:
            if self.source.missing == "proxy":
                log.info("no depth map for %r under %s: haze uses the proxy", image_id, root)
                return None, "proxy"
            tried = ", ".join(f.format(stem=Path(image_id).stem) for f in DEPTH_FILES)
            raise DepthError(
                f"no depth map for image {image_id!r} in {root} (looked for {tried}); add one, "
                "or pass missing='proxy' (tir bench --depth-missing proxy) to fall back to the "
                "proxy for such images"
            )
        shape = (int(photo.shape[0]), int(photo.shape[1]))
        key = ("folder", str(path), path.stat().st_mtime_ns, shape)
        return _cached(key, lambda: normalise_depth(read_depth_file(path), shape)), "folder"

    def _predict(self, photo: ImageU8, model_id: str, digest: str) -> DepthMap:
        cache = self.source.cache_dir
        file = None if cache is None else cache / f"{model_id}_{digest}.npy"
        if file is not None and file.is_file():
            return np.load(file, allow_pickle=False).astype(np.float32)
        depth = model_depth(self.source.path, photo, self.device)  # type: ignore[arg-type]
        if file is not None:
            file.parent.mkdir(parents=True, exist_ok=True)
            tmp = file.with_suffix(".tmp.npy")
            np.save(tmp, depth)
            tmp.replace(file)  # atomic: a concurrent reader never sees half a file
        return depth


def depth_provider(source: str | DepthSource, device: str = "cpu") -> DepthProvider:
    """A :class:`DepthProvider` for a spec or :class:`DepthSource` (checks folders now).

    Raises:
        DepthError: a bad spec, or a folder (or a model file) that is missing.
    """
    return DepthProvider(DepthSource.parse(source), device)


# ---------------------------------------------------------------- depth maps


def normalise_depth(depth: np.ndarray, shape: tuple[int, int]) -> DepthMap:
    """AgenticIR's convention: bicubic resize to ``shape`` (H, W), then ``d / max(d)``.

    Negative values (bicubic overshoot, a map with a shifted zero) are clipped to 0. A map
    with no positive value cannot be normalised.

    Raises:
        DepthError: the map is not 2-D, not finite, or has no positive value.
    """
    if depth.ndim != 2 or not np.isfinite(depth).all():
        raise DepthError(
            f"a depth map must be a finite 2-D array, got shape {depth.shape} "
            f"({'finite' if np.isfinite(depth).all() else 'with NaN/Inf'})"
        )
    fitted = np.clip(fit_depth(depth.astype(np.float32), shape, clip=False), 0.0, None)
    top = float(fitted.max())
    if top <= 0.0:
        raise DepthError("a depth map has no positive value; larger must mean farther")
    return (fitted / top).astype(np.float32)


def fit_depth(depth: np.ndarray, shape: tuple[int, int], clip: bool = True) -> DepthMap:
    """Resize a depth map to ``shape`` (H, W): bicubic up (as AgenticIR), area down.

    Used for whole photos and for the working image when haze follows ``low_resolution``.
    """
    h, w = int(shape[0]), int(shape[1])
    out: np.ndarray
    if depth.shape == (h, w):
        out = depth.astype(np.float32)
    else:
        smaller = h * w < depth.shape[0] * depth.shape[1]
        interp = cv2.INTER_AREA if smaller else cv2.INTER_CUBIC
        out = cv2.resize(depth.astype(np.float32), (w, h), interpolation=interp).reshape(h, w)
    return np.clip(out, 0.0, 1.0) if clip else out


def disparity_to_depth(disparity: np.ndarray, floor: float = DISPARITY_FLOOR) -> DepthMap:
    """Relative inverse depth (larger = nearer) -> depth in [floor, 1] (1 = farthest).

    ``d = floor / max(s / max(s), floor)``: depth proportional to ``1 / s``, with the far
    range capped at ``1 / floor`` times the nearest depth. A map without positive disparity
    is everywhere as far as it gets (``d = 1``).
    """
    s = np.asarray(disparity, dtype=np.float64)
    top = float(s.max()) if s.size else 0.0
    s = s / top if top > 0 else np.zeros_like(s)
    return (floor / np.maximum(s, floor)).astype(np.float32)


def find_depth_file(root: Path, image_id: str) -> Path | None:
    """The depth file of ``image_id`` under ``root``, or ``None``.

    Tried in :data:`DEPTH_FILES` order, first next to the image's relative path
    (``sub/a.jpg`` -> ``root/sub/a.npy``), then by bare stem (``root/a.npy``).
    """
    rel = Path(image_id)
    for folder in dict.fromkeys([root / rel.parent, root]):
        for pattern in DEPTH_FILES:
            path = folder / pattern.format(stem=rel.stem)
            if path.is_file():
                return path
    return None


def read_depth_file(path: Path) -> np.ndarray:
    """Read a depth map as float32 HxW, unscaled (normalisation divides by the max anyway).

    Raises:
        DepthError: unreadable file or a map that is not one channel.
    """
    try:
        if path.suffix == ".npy":
            array = np.load(path, allow_pickle=False)
        elif path.suffix == ".mat":
            from scipy.io import loadmat

            array = loadmat(str(path))["data_obj"]
        else:
            array = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
            if array is None:
                raise ValueError("OpenCV cannot decode it")
            if array.ndim == 3:  # a grey map saved as colour: the channels are equal
                array = array[..., 0]
    except Exception as err:  # noqa: BLE001 - numpy, scipy, OpenCV all mean "unreadable"
        raise DepthError(f"cannot read depth map {path}: {err}") from err
    array = np.squeeze(np.asarray(array))
    if array.ndim != 2:
        raise DepthError(f"depth map {path} must be HxW (one channel), got shape {array.shape}")
    return array.astype(np.float32)


# ---------------------------------------------------------------- depth models


def check_model_dir(folder: Path) -> Path:
    """Check a depth model folder holds a config, an image-processor config and weights.

    Raises:
        DepthError: the folder or a file is missing (names the path and the files expected).
    """
    missing = [f for f in MODEL_FILES if not (folder / f).is_file()]
    if not any((folder / f).is_file() for f in MODEL_WEIGHTS):
        missing.append(" or ".join(MODEL_WEIGHTS))
    if missing:
        raise DepthError(
            f"depth model folder {folder} lacks {', '.join(missing)}{_expected('model')}"
        )
    return folder


def model_key(folder: Path) -> str:
    """A short id of a model folder: its name plus a hash of its config and weights size."""
    h = hashlib.blake2b(digest_size=6)
    h.update((folder / "config.json").read_bytes())
    for name in MODEL_WEIGHTS:
        if (folder / name).is_file():
            h.update(f"{name}:{(folder / name).stat().st_size}".encode())
    return f"{folder.name}-{h.hexdigest()}"


def photo_digest(photo: ImageU8) -> str:
    """Content hash of a uint8 photo (shape and pixels)."""
    h = hashlib.blake2b(digest_size=12)
    h.update(str(photo.shape).encode())
    h.update(np.ascontiguousarray(photo).tobytes())
    return h.hexdigest()


def model_depth(folder: Path, photo: ImageU8, device: str = "cpu") -> DepthMap:
    """Predict the depth map of a whole photo with the model in ``folder``.

    The image processor resizes the photo for the network; the prediction is resized back
    to the photo with bicubic interpolation (as ``post_process_depth_estimation`` does), then
    converted to depth (module docstring): inverted with :func:`disparity_to_depth` for
    relative (inverse-depth) models, divided by its maximum for metric ones.

    Raises:
        DepthError: the folder does not load as a depth model.
    """
    import torch

    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    model, processor = _load_model(str(folder), device)
    # A writable copy: cached photos are read-only and torch warns on those.
    inputs = processor(images=np.array(photo), return_tensors="pt").to(device)
    with torch.inference_mode():
        predicted = model(**inputs).predicted_depth
    h, w = photo.shape[:2]
    resized = torch.nn.functional.interpolate(
        predicted.reshape(1, 1, *predicted.shape[-2:]).float(),
        size=(h, w),
        mode="bicubic",
        align_corners=False,
    )
    values = resized[0, 0].cpu().numpy()
    if not np.isfinite(values).all():
        raise DepthError(f"depth model {folder} predicted NaN or Inf")
    if getattr(model.config, "depth_estimation_type", "relative") == "metric":
        return normalise_depth(values, (h, w))
    return disparity_to_depth(values)


_MODEL_LOCK = threading.Lock()
_MODELS: dict[tuple[str, str], tuple[Any, Any]] = {}


def _load_model(folder: str, device: str) -> tuple[Any, Any]:
    # One loaded copy per folder and device, shared by every env of the process.
    with _MODEL_LOCK:
        if (folder, device) not in _MODELS:
            from transformers import AutoImageProcessor, AutoModelForDepthEstimation

            check_model_dir(Path(folder))
            try:
                processor = AutoImageProcessor.from_pretrained(folder, local_files_only=True)
                model = AutoModelForDepthEstimation.from_pretrained(folder, local_files_only=True)
            except Exception as err:  # noqa: BLE001 - json, safetensors, torch: all "corrupt"
                raise DepthError(f"cannot load the depth model in {folder}: {err}") from err
            _MODELS[(folder, device)] = (model.to(device).eval(), processor)
        return _MODELS[(folder, device)]


_CACHE: OrderedDict[tuple[Any, ...], DepthMap] = OrderedDict()
_CACHE_LOCK = threading.Lock()


def _cached(key: tuple[Any, ...], make: Callable[[], DepthMap]) -> DepthMap:
    with _CACHE_LOCK:
        if key in _CACHE:
            _CACHE.move_to_end(key)
            return _CACHE[key]
    depth = make()
    depth.setflags(write=False)  # shared between episodes: nobody may modify it
    with _CACHE_LOCK:
        _CACHE[key] = depth
        while len(_CACHE) > CACHE_SIZE:
            _CACHE.popitem(last=False)
    return depth


def _expected(kind: str) -> str:
    if kind == "folder":
        return (
            "; expected a folder with one depth map per clean image, named by its stem: "
            + ", ".join(DEPTH_FILES)
        )
    return (
        f"; expected a transformers depth-estimation model saved with save_pretrained: "
        f"{', '.join(MODEL_FILES)} and {' or '.join(MODEL_WEIGHTS)} (nothing is downloaded)"
    )
