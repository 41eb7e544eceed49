"""Helpers shared by the classical tools: per-image plumbing, colour, noise estimation.

The names are public inside the package (the task modules import them) but the module is
private: the toolbox's public helpers are re-exported by :mod:`tir_env.tools.classical`.
"""

from __future__ import annotations

import os
import queue
import threading
from abc import abstractmethod
from collections.abc import Callable, Mapping
from typing import ClassVar

import cv2
import numpy as np
import torch

from tir_env.images import batch_to_hwc, channel_max, store_hwc
from tir_env.tools.base import Tool
from tir_env.types import ImageF32

#: ITU-R BT.601 luma weights (JPEG's YCbCr), RGB order.
LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


def per_image(
    batch: torch.Tensor, fn: Callable[[ImageF32, int], np.ndarray], threads: int = 1
) -> torch.Tensor:
    """Apply ``fn(image, index)`` (HWC float32 -> HWC) to every image of ``batch``; re-batch.

    Each result is written into the output with one transposing copy while it is still in
    cache (:func:`~tir_env.images.store_hwc`), rather than converted and copied again, or
    stacked at the end: a batch of x4 outputs (16 MB) re-batched in one go runs out of cache
    and made the batched call slower than one call per image.

    With ``threads`` > 1 the images are spread over that many threads (:func:`spread`);
    ``fn`` must then be safe to call from several threads at once. Results of different
    shapes raise ``ValueError`` whichever comes first.
    """
    images = batch_to_hwc(batch)
    out: torch.Tensor | None = None
    allocate = threading.Lock()

    def one(i: int) -> None:
        nonlocal out
        result = np.asarray(fn(images[i], i), dtype=np.float32)
        with allocate:
            if out is None:
                h, w, c = result.shape
                out = torch.empty((len(images), c, h, w), dtype=torch.float32)
        c, h, w = out.shape[1:]
        if result.shape != (h, w, c):  # store_hwc would broadcast (H, W, 1) silently
            raise ValueError(f"image {i} came back {result.shape}, another {(h, w, c)}")
        store_hwc(out[i], result)

    spread(len(images), one, threads)
    assert out is not None  # a batch holds at least one image (check_batch)
    return out.to(batch.device)


class _Helpers:
    """Daemon threads that run the callables put on their queue, one at a time each.

    Daemons, unlike ``ThreadPoolExecutor``'s threads, never hold up the interpreter's exit
    when a call hangs (the pool abandons such calls to daemon threads too).
    """

    def __init__(self, threads: int) -> None:
        self._tasks: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
        for _ in range(threads):
            threading.Thread(target=self._work, name="tir-image", daemon=True).start()

    def _work(self) -> None:
        while True:
            self._tasks.get()()

    def submit(self, task: Callable[[], None]) -> None:
        """Run ``task`` on the next free helper (it must not raise)."""
        self._tasks.put(task)


#: Helpers of :func:`spread`, one set per thread count, made on first use.
_HELPERS: dict[int, _Helpers] = {}
_HELPERS_LOCK = threading.Lock()
#: Marks a thread that is running :func:`spread`'s work: a nested spread runs serially.
_SPREADING = threading.local()


def reference_threads() -> int:
    """Threads over which a CPU batch's per-image reference is spread: OpenCV's budget.

    OpenCV's own threads barely help on small images (NL-means at 64 px: 12.3 ms an image
    with 2 threads, 11.8 with 1), while two images at once on 2 cores take half the time
    each; ``cv2.setNumThreads(1)`` makes every batch serial again.
    """
    return max(1, cv2.getNumThreads())


def _forget_helpers_after_fork() -> None:
    """A forked child (a subprocess vector env) has none of its parent's helper threads."""
    global _HELPERS_LOCK
    _HELPERS.clear()  # their queues would hold work that no thread runs
    _HELPERS_LOCK = threading.Lock()  # and the lock may have been held at the fork


os.register_at_fork(after_in_child=_forget_helpers_after_fork)


def _helpers(threads: int) -> _Helpers:
    with _HELPERS_LOCK:
        if threads not in _HELPERS:
            _HELPERS[threads] = _Helpers(threads)
        return _HELPERS[threads]


class _Spread:
    """The shared state of one :func:`spread`: the next index, the first error, who works."""

    def __init__(self, n: int, one: Callable[[int], None]) -> None:
        self.n, self.one = n, one
        self.next = 0
        self.error: BaseException | None = None
        self.active = 0  # helpers inside drain
        self.closed = False  # the caller is done: late helpers leave at once
        self.cond = threading.Condition()

    def drain(self) -> None:
        """Take indices and run them until none are left or one has failed."""
        outer = getattr(_SPREADING, "active", False)
        _SPREADING.active = True
        try:
            while True:
                with self.cond:
                    if self.error is not None or self.next >= self.n:
                        return
                    i, self.next = self.next, self.next + 1
                try:
                    self.one(i)
                except BaseException as error:  # the first error, whichever thread has it
                    with self.cond:
                        self.error = self.error or error
                    return
        finally:
            _SPREADING.active = outer

    def help_out(self) -> None:
        """A helper's share: nothing if the caller has already finished."""
        with self.cond:
            if self.closed:
                return
            self.active += 1
        try:
            self.drain()
        finally:
            with self.cond:
                self.active -= 1
                self.cond.notify_all()

    def finish(self) -> None:
        """Let no helper start; wait for those at work (each ends its current image)."""
        with self.cond:
            self.closed = True
            self.cond.wait_for(lambda: self.active == 0)


def spread(n: int, one: Callable[[int], None], threads: int) -> None:
    """Call ``one(i)`` for ``i`` in ``range(n)`` on up to ``threads`` threads; re-raise.

    The caller takes indices too, so it never waits for a helper to start: helpers busy
    with another batch (or stuck in a hung call the pool gave up on) only lose their
    share, and those that start after the caller is done leave at once. The first error
    (any ``BaseException``) stops every thread taking new indices and is raised here.
    Calls already inside a spread (a reference that itself batches) run serially, so
    helpers never wait on helpers; where no helper can be started (the interpreter is
    shutting down) the caller runs everything.
    """
    if threads <= 1 or n <= 1 or getattr(_SPREADING, "active", False):
        for i in range(n):
            one(i)
        return
    state = _Spread(n, one)
    try:
        helpers = _helpers(threads)
    except RuntimeError:  # "can't create new thread at interpreter shutdown"
        helpers = None
    if helpers is not None:
        for _ in range(min(threads, n) - 1):
            helpers.submit(state.help_out)
    try:
        state.drain()
    finally:
        state.finish()
    if state.error is not None:
        raise state.error


def param_rows(params: Mapping[str, float | torch.Tensor], n: int) -> list[dict[str, float]]:
    """One float parameter dict per image: row ``i`` of each per-image ``(N,)`` tensor."""
    rows = []
    for i in range(n):
        row = {}
        for key, value in params.items():
            row[key] = float(value[i]) if isinstance(value, torch.Tensor) else float(value)
        rows.append(row)
    return rows


def fit_odd(size: int, *dims: int) -> int:
    """Largest odd window size <= ``size`` that fits every dimension in ``dims`` (>= 1)."""
    size = min(size, *dims)
    return max(1, size if size % 2 else size - 1)


def to_u8(image: np.ndarray) -> np.ndarray:
    """Map float [0, 1] to uint8 [0, 255], rounding to nearest."""
    return np.clip(image * 255.0 + 0.5, 0, 255).astype(np.uint8)


def luma(image: ImageF32) -> np.ndarray:
    """BT.601 luma Y of an RGB HWC image."""
    return np.ascontiguousarray(image @ LUMA)


def rgb_to_ycc(image: ImageF32) -> np.ndarray:
    """RGB -> JPEG's full-range YCbCr (all in [0, 1], chroma centred on 0.5)."""
    return cv2.cvtColor(image, cv2.COLOR_RGB2YCrCb)[..., [0, 2, 1]]


def ycc_to_rgb(ycc: np.ndarray) -> np.ndarray:
    """Inverse of :func:`rgb_to_ycc`."""
    return cv2.cvtColor(np.ascontiguousarray(ycc[..., [0, 2, 1]], np.float32), cv2.COLOR_YCrCb2RGB)


def estimate_noise_sigma(image: ImageF32) -> float:
    """Gaussian noise level per channel, in [0, 1] units (Donoho's wavelet MAD estimator).

    ``sigma = median(|HH|) / 0.6745`` over the finest diagonal Haar detail of each channel,
    averaged over channels, as ``skimage.restoration.estimate_sigma(average_sigmas=True)``.
    Images under 2 pixels a side give 0.
    """
    h, w = (image.shape[0] // 2) * 2, (image.shape[1] // 2) * 2
    if h < 2 or w < 2:
        return 0.0
    x = image[:h, :w].astype(np.float64)
    hh = (x[0::2, 0::2] - x[0::2, 1::2] - x[1::2, 0::2] + x[1::2, 1::2]) / 2.0
    # one contiguous row per channel: np.median over axes (0, 1) of the HWC array partitions
    # strided data, twice as slow (half of bilateral_denoise's time at 64 px); same values
    planes = np.abs(hh).reshape(hh.shape[0] * hh.shape[1], -1).T.copy()
    return float(np.mean(np.median(planes, axis=1)) / 0.6745)


def scale_value(image: ImageF32, new_v: np.ndarray) -> np.ndarray:
    """Set the HSV value V = max(R, G, B) to ``new_v`` keeping hue and saturation.

    Keeping H and S fixed scales R, G, B by ``new_v / V``; black pixels (V = 0, so S = 0)
    become grey ``new_v``, as OpenCV's HSV -> RGB would make them.
    """
    v = channel_max(image)
    ratio = new_v / np.maximum(v, 1e-6)
    out = image * ratio[..., None]
    return np.where((v > 1e-6)[..., None], out, new_v[..., None])


def unsharp(image: np.ndarray, sigma: float, amount: float) -> np.ndarray:
    """Unsharp masking ``x + amount * (x - G_sigma * x)``."""
    blurred = cv2.GaussianBlur(image, (0, 0), sigma, borderType=cv2.BORDER_REFLECT)
    # (1 + a) x - a blur(x) in one SIMD pass: numpy's three temporaries took 0.7 ms at
    # 256 px, half of lanczos_x4_sharpen's time (this is 0.03 ms)
    return cv2.addWeighted(image, 1.0 + amount, blurred, -amount, 0.0)


def centre_crop(image: ImageF32, size: int) -> ImageF32:
    """Centre crop of at most ``size`` x ``size`` pixels (bounds the cost of estimation)."""
    h, w = image.shape[:2]
    top, left = max(0, (h - size) // 2), max(0, (w - size) // 2)
    return image[top : top + size, left : left + size]


class PerImageTool(Tool):
    """A tool that runs a numpy HWC function on each image of the batch.

    A batched torch port overrides :meth:`apply`; :meth:`restore` stays its reference. Where
    the port is slower than the reference on a CPU (OpenCV's integer SIMD code: NL-means,
    bilateral, CLAHE, ...), the tool sets :attr:`cpu_reference` and runs the reference on
    CPU batches, the port on every other device. Where the port overtakes the reference once
    a batch amortises its per-call cost, :attr:`cpu_port_from` says from how many images.
    """

    #: Run :meth:`restore` per image on a CPU (faster there than the torch port).
    cpu_reference: ClassVar[bool] = False
    #: With :attr:`cpu_reference`: CPU batches of at least this many images run the port
    #: (``None``: never; ``python -m benchmarks.tool_speed`` measures both).
    cpu_port_from: ClassVar[int | None] = None
    #: Parameters whose values split a batch into separate port calls (a window radius, a
    #: tile grid). With :attr:`cpu_port_from`, each group of equal values chooses between
    #: the reference and the port by its own size: 16 images with 16 radii are 16 one-image
    #: ports, where the reference is faster (``jpeg_tv``: 0.5x the per-call speed before).
    structure_params: ClassVar[tuple[str, ...]] = ()
    #: With :attr:`cpu_reference`: spread a batch's images over :func:`reference_threads`.
    #: For references that are a few OpenCV calls, which release the GIL (NL-means at 64 px,
    #: 16 images on 2 cores: 0.94x -> 1.90x the per-call speed); references made of many
    #: small numpy steps contend for the GIL and got slower (derain_opening 1.31x -> 0.66x).
    spread_reference: ClassVar[bool] = False

    def run(self, batch: torch.Tensor, params: Mapping[str, float]) -> torch.Tensor:
        """:meth:`apply`, or the numpy reference on a CPU where it is faster.

        The reference takes each image's own values of per-image ``(N,)`` parameters.
        """
        on_cpu = self.cpu_reference and batch.device.type == "cpu"
        if self.structure_params and on_cpu and not self.uses_reference(batch):
            # the batch is large enough for the port, but it may be many small structures
            keys, one = self.structure_params, self._run_one_structure
            return by_structure(batch, params, keys, one)  # type: ignore[arg-type]
        return self._run_one_structure(batch, params)

    def _run_one_structure(self, batch: torch.Tensor, params: Mapping[str, float]) -> torch.Tensor:
        """:meth:`run`'s choice for a batch whose structural parameters agree."""
        if self.uses_reference(batch):
            rows = param_rows(params, batch.shape[0])
            restore = self.restore
            threads = reference_threads() if self.spread_reference else 1
            return per_image(batch, lambda image, i: restore(image, rows[i]), threads)
        return self.apply(batch, params)

    def uses_reference(self, batch: torch.Tensor) -> bool:
        """Whether :meth:`run` takes the numpy reference for this batch (see the class doc)."""
        if not self.cpu_reference or batch.device.type != "cpu":
            return False
        return self.cpu_port_from is None or batch.shape[0] < self.cpu_port_from

    def apply(self, batch: torch.Tensor, params: Mapping[str, float]) -> torch.Tensor:
        """Run :meth:`restore` on each image."""
        return per_image(batch, lambda image, _: self.restore(image, params))

    @abstractmethod
    def restore(self, image: ImageF32, params: Mapping[str, float]) -> np.ndarray:
        """Restore one float32 HWC image in [0, 1] (the result is clipped afterwards)."""


# ------------------------------------------------- batched torch versions (float32 NCHW)


def channel_max_torch(batch: torch.Tensor) -> torch.Tensor:
    """HSV value V = max(R, G, B) of every pixel, N x 1 x H x W."""
    return batch.amax(dim=1, keepdim=True)


def luma_torch(batch: torch.Tensor) -> torch.Tensor:
    """BT.601 luma of every pixel, N x 1 x H x W."""
    weights = torch.from_numpy(LUMA).to(batch).reshape(1, 3, 1, 1)
    return (batch * weights).sum(dim=1, keepdim=True)


def scale_value_torch(batch: torch.Tensor, new_v: torch.Tensor) -> torch.Tensor:
    """:func:`scale_value` of a batch (``new_v`` N x 1 x H x W)."""
    v = channel_max_torch(batch)
    out = batch * (new_v / v.clamp_min(1e-6))
    return torch.where(v > 1e-6, out, new_v)


def estimate_noise_sigma_torch(batch: torch.Tensor) -> torch.Tensor:
    """:func:`estimate_noise_sigma` of every image, shape (N,), float64."""
    h, w = (batch.shape[-2] // 2) * 2, (batch.shape[-1] // 2) * 2
    if h < 2 or w < 2:
        return torch.zeros(batch.shape[0], dtype=torch.float64, device=batch.device)
    x = batch[..., :h, :w].to(torch.float64)
    hh = (x[..., 0::2, 0::2] - x[..., 0::2, 1::2] - x[..., 1::2, 0::2] + x[..., 1::2, 1::2]) / 2
    # quantile(0.5) interpolates between the middle values as numpy's median does
    med = torch.quantile(hh.abs().flatten(2), 0.5, dim=-1)
    return med.mean(dim=1) / 0.6745


def by_structure(
    batch: torch.Tensor,
    params: Mapping[str, float | torch.Tensor],
    keys: tuple[str, ...],
    fn: Callable[[torch.Tensor, dict[str, float | torch.Tensor]], torch.Tensor],
) -> torch.Tensor:
    """Run ``fn`` once per distinct value of the structural parameters ``keys``.

    Structural parameters (window sizes, shift steps) change the shape of the computation,
    so images that differ in them cannot share one tensor op; the batch is split into groups
    of equal values, ``fn`` gets each group with those parameters as floats and any other
    per-image ``(N,)`` parameters sliced to the group, and the results are put back in
    order. One group (the usual case) calls ``fn`` on the whole batch.
    """
    n = batch.shape[0]
    columns = {k: torch.as_tensor(params[k], dtype=torch.float64).flatten().cpu() for k in keys}
    if all(c.numel() == 1 or bool((c == c[0]).all()) for c in columns.values()):
        return fn(batch, {**params, **{k: float(c[0]) for k, c in columns.items()}})
    table = torch.stack([c.expand(n) for c in columns.values()], dim=1)
    groups = []
    for row in torch.unique(table, dim=0):
        index = (table == row).all(dim=1).nonzero().flatten().to(batch.device)
        sub: dict[str, float | torch.Tensor] = {
            k: v[index.to(v.device)] if isinstance(v, torch.Tensor) and v.numel() == n > 1 else v
            for k, v in params.items()
        }
        sub.update({k: float(v) for k, v in zip(keys, row.tolist(), strict=True)})
        groups.append((index, fn(batch[index], sub)))
    out = groups[0][1].new_empty((n, *groups[0][1].shape[1:]))
    for index, part in groups:
        out[index] = part
    return out


#: Linear RGB -> CIE XYZ (D65) scaled by the white point, as OpenCV's ``COLOR_LBGR2Lab``.
_RGB_TO_XYZN = torch.tensor(
    [
        [0.412453 / 0.950456, 0.357580 / 0.950456, 0.180423 / 0.950456],
        [0.212671, 0.715160, 0.072169],
        [0.019334 / 1.088754, 0.119193 / 1.088754, 0.950227 / 1.088754],
    ],
    dtype=torch.float64,
)
_LAB_T0 = 0.008856


def linear_rgb_to_lab_torch(batch: torch.Tensor) -> torch.Tensor:
    """CIE L*a*b* of linear RGB (OpenCV's ``COLOR_LBGR2Lab`` formulas, float): L in [0, 100].

    ``f(t) = t^(1/3)`` above 0.008856, else ``7.787 t + 16/116``; ``L = 116 f(Y) - 16``,
    ``a = 500 (f(X) - f(Y))``, ``b = 200 (f(Y) - f(Z))`` (OpenCV ``cvtColor`` docs).
    """
    xyz = torch.einsum("ij,njhw->nihw", _RGB_TO_XYZN.to(batch), batch)
    f = torch.where(xyz > _LAB_T0, xyz.clamp_min(_LAB_T0) ** (1 / 3), 7.787 * xyz + 16 / 116)
    lum = torch.where(xyz[:, 1:2] > _LAB_T0, 116 * f[:, 1:2] - 16, 903.3 * xyz[:, 1:2])
    return torch.cat([lum, 500 * (f[:, :1] - f[:, 1:2]), 200 * (f[:, 1:2] - f[:, 2:])], dim=1)


def lab_to_linear_rgb_torch(lab: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`linear_rgb_to_lab_torch`."""
    lum = lab[:, :1]
    fy = torch.where(lum > 903.3 * _LAB_T0, (lum + 16) / 116, 7.787 * lum / 903.3 + 16 / 116)
    f = torch.cat([fy + lab[:, 1:2] / 500, fy, fy - lab[:, 2:] / 200], dim=1)
    t1 = 7.787 * _LAB_T0 + 16 / 116
    xyz = torch.where(f > t1, f**3, (f - 16 / 116) / 7.787)
    return torch.einsum("ij,njhw->nihw", torch.linalg.inv(_RGB_TO_XYZN).to(lab), xyz)


def rgb_to_ycc_torch(batch: torch.Tensor) -> torch.Tensor:
    """:func:`rgb_to_ycc` of a batch: channels Y, Cb, Cr (OpenCV's float ``RGB2YCrCb``).

    ``Y = 0.299 R + 0.587 G + 0.114 B``, ``Cb = 0.564 (B - Y) + 1/2``, ``Cr = 0.713 (R - Y)
    + 1/2`` (the constants of OpenCV's float path).
    """
    y = luma_torch(batch)
    cb = (batch[:, 2:3] - y) * 0.564 + 0.5
    cr = (batch[:, 0:1] - y) * 0.713 + 0.5
    return torch.cat([y, cb, cr], dim=1)


def ycc_to_rgb_torch(ycc: torch.Tensor) -> torch.Tensor:
    """:func:`ycc_to_rgb` of a batch (OpenCV's float ``YCrCb2RGB`` constants)."""
    y, cb, cr = ycc[:, 0:1], ycc[:, 1:2] - 0.5, ycc[:, 2:3] - 0.5
    return torch.cat([y + 1.403 * cr, y - 0.714 * cr - 0.344 * cb, y + 1.773 * cb], dim=1)
