"""The history of tool calls: array encoding (observation) and text rendering (VLM prompt)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from tir_env.spaces import encode_call, max_params
from tir_env.types import StepRecord


def encode_history(
    records: Sequence[StepRecord], tools: Sequence[str], rows: int, *, width: int | None = None
) -> np.ndarray:
    """Encode the most recent ``rows`` records, oldest first, zero-padded at the end.

    Row layout (float32, all in [-1, 1]): ``[valid, one-hot tool (T+1, STOP first),
    normalised params (P), tanh(reward), error]`` (:func:`~tir_env.spaces.history_width`
    columns). ``width`` is P (``max_params(tools)``) when the caller has it (an env, every
    step: computing it looks every tool up in the registry).
    """
    n_tools, p = len(tools) + 1, max_params(tools) if width is None else width
    out = np.zeros((rows, 1 + n_tools + p + 2), dtype=np.float32)
    for row, record in zip(out, list(records)[-rows:], strict=False):
        action = encode_call(record.call, tools, width=p)
        row[0] = 1.0
        row[1 + int(action["tool"])] = 1.0
        row[1 + n_tools : 1 + n_tools + p] = action["params"]
        row[-2] = math.tanh(record.reward) if math.isfinite(record.reward) else -1.0
        row[-1] = 0.0 if record.ok else 1.0
    return out


def render_history(records: Sequence[StepRecord], metrics: Sequence[str] = ("psnr",)) -> str:
    """Human/VLM-readable history, one line per call.

    Example:
        >>> render_history([])
        'No tools called yet.'
    """
    if not records:
        return "No tools called yet."
    lines = []
    for i, r in enumerate(records, 1):
        what = str(r.call) if r.call else "STOP"
        if not r.ok:
            lines.append(f"{i}. {what} -> failed: {r.error}")
            continue
        shown = [
            f"{m} {r.metrics_before[m]:.3g}->{r.metrics_after[m]:.3g}"
            for m in metrics
            if m in r.metrics_before and m in r.metrics_after
        ]
        lines.append(f"{i}. {what} -> " + (", ".join(shown) or "ok"))
    return "\n".join(lines)
