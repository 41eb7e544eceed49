"""``tir restore`` at full size: plan on a native-resolution crop, apply the plan in tiles.

An agent's episode on a whole 12-megapixel photo needs gigabytes and minutes per tool call
(every step is scored by the metrics, search agents try every tool), and downscaling the
photo first changes what the agent sees: sigma-15 noise on a 4000x3000 photo is sigma 4 at
1024 px and goes unnoticed. So:

* a photo up to :data:`TILE_SIDE` on both sides runs whole through the agent's episode;
* a larger photo is planned on its centre crop of :data:`TILE_SIDE` x :data:`TILE_SIDE`
  pixels at native resolution (noise, blur and JPEG blocks keep their scale), and the
  trajectory's successful tool calls are then replayed on the whole photo in overlapping tiles
  of the same side, blended with linear ramps (:func:`tir_env.tiles.process_tiled`). Memory
  is bounded by one band of tiles; a progress bar shows for anything over two seconds.

A tool that estimates something global (dark_channel_prior's atmospheric light,
gamma_correction's exposure) estimates it per tile; the ramps hide the seams. A checkpoint
that changes the size (a x4 super-resolution network) has each tile brought back to its
size: the output has the photo's size.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from tir_env.errors import ToolExecutionError
from tir_env.images import resize
from tir_env.tiles import process_tiled, tile_spans
from tir_env.tools.pool import ToolPool
from tir_env.types import ImageU8, StepRecord, ToolCall

#: Largest side an agent's episode runs on, and the side of the tiles its plan is applied in.
TILE_SIDE = 1024
#: Overlap of neighbouring tiles (a multiple of 8, so JPEG blocks line up).
TILE_OVERLAP = 64


def needs_tiles(image: ImageU8, side: int | None = None) -> bool:
    """Whether ``image`` is larger than one episode should run on (``side``: TILE_SIDE)."""
    return max(image.shape[:2]) > (side or TILE_SIDE)


def tile_count(image: ImageU8, side: int | None = None) -> int:
    """How many tiles :func:`replay_tiled` cuts ``image`` into."""
    tile = side or TILE_SIDE
    overlap = _overlap(tile)
    h, w = image.shape[:2]
    return len(tile_spans(h, tile, overlap)) * len(tile_spans(w, tile, overlap))


def _overlap(tile: int) -> int:
    """:data:`TILE_OVERLAP`, or less for small tiles (tests), on the 8-pixel grid."""
    return min(TILE_OVERLAP, tile // 4 // 8 * 8)


def plan_crop(image: ImageU8, side: int | None = None) -> ImageU8:
    """The centre crop (at most ``side`` x ``side``, default TILE_SIDE) an agent plans on.

    Its origin lies on the 8-pixel grid, so a JPEG's blocks stay aligned.
    """
    side = side or TILE_SIDE
    h, w = image.shape[:2]
    ch, cw = min(h, side), min(w, side)
    top, left = (h - ch) // 2 // 8 * 8, (w - cw) // 2 // 8 * 8
    return image[top : top + ch, left : left + cw].copy()


def planned_calls(records: Sequence[StepRecord]) -> list[ToolCall]:
    """The calls that changed the image in an episode (failed calls left it unchanged)."""
    return [r.call for r in records if r.call is not None and r.error is None]


def replay_tiled(
    image: ImageU8,
    calls: Sequence[ToolCall],
    pool: ToolPool,
    progress: bool = True,
    side: int | None = None,
) -> ImageU8:
    """Apply ``calls`` in order to every tile of ``image``; the blended result, full size.

    Raises:
        ToolExecutionError: a call failed on a tile (it succeeded on the planning crop).
    """

    def run(batch: torch.Tensor) -> torch.Tensor:
        size = (int(batch.shape[-2]), int(batch.shape[-1]))
        for call in calls:
            result = pool.run(batch, call)
            if not result.ok or result.image is None:
                raise ToolExecutionError(
                    f"{call} failed on a {size[1]}x{size[0]} tile: {result.error}"
                )
            batch = resize(result.image, size)  # a no-op unless a checkpoint changed the size
        return batch

    if not calls:
        return image.copy()
    tile = side or TILE_SIDE
    return process_tiled(image, run, tile=tile, overlap=_overlap(tile), progress=progress)


#: Pixels between the two halves of a before/after strip.
STRIP_GAP = 8


def before_after(
    before: ImageU8, after: ImageU8, calls: Sequence[ToolCall], height: int = 512
) -> ImageU8:
    """The photo and its result side by side (at most ``height`` high), labelled with the calls.

    A result of another size (an upscaling) is shown at the photo's height, so the two halves
    line up.
    """
    import numpy as np

    from benchmarks.report import label_row
    from tir_env.images import hstack_strip

    strip = hstack_strip([before, after], height=min(height, before.shape[0]), gap=STRIP_GAP)
    tile = (strip.shape[1] - STRIP_GAP) // 2
    done = " > ".join(call.tool for call in calls) or "left as it was"
    labels = label_row(["before", f"after: {done}"], tile, STRIP_GAP, strip.shape[1])
    return np.concatenate([labels, strip])
