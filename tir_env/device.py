"""Where tensors run: the one place ``"auto"`` / ``"cpu"`` / ``"cuda"`` become a device."""

from __future__ import annotations

import torch


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"`` -> CUDA when available, else CPU; other names pass through.

    Raises:
        ValueError: ``"cuda"`` was asked for but no CUDA device is available (say ``"auto"``
            to fall back to the CPU).
    """
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    resolved = torch.device(device)
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            "device='cuda' but torch.cuda.is_available() is False; use 'auto' or 'cpu'"
        )
    return resolved
