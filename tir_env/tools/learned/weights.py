"""Where the learned weights live, and loading them safely (safetensors only).

The weights ship in ``tir_env/assets/learned/``: one ``<name>.safetensors`` per network and a
``<name>.json`` record beside it (task, architecture, training command, data split, steps,
seconds, PSNR on the test split). Set ``TIR_LEARNED_WEIGHTS`` to a folder to load another
set (for example one retrained by ``tir train-tools --out DIR``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from torch import nn

from tir_env.errors import CheckpointError, WeightsNotFoundError
from tir_env.files import environ_set

#: Environment variable naming a folder that replaces the shipped weights.
WEIGHTS_ENV = "TIR_LEARNED_WEIGHTS"
#: The folder of the weights that ship with TIR.
SHIPPED_DIR = Path(__file__).resolve().parents[2] / "assets" / "learned"


def weights_dir() -> Path:
    """The folder weights load from: ``$TIR_LEARNED_WEIGHTS`` or the shipped assets."""
    override = os.environ.get(WEIGHTS_ENV)
    return Path(override).expanduser() if override else SHIPPED_DIR


@contextmanager
def weights_folder(folder: str | Path) -> Iterator[None]:
    """Load weights from ``folder`` inside the block (``$TIR_LEARNED_WEIGHTS``, then restored).

    Modules that cache a loaded network (``tir_env.quality_gain``) must reload it themselves.
    """
    with environ_set(WEIGHTS_ENV, str(folder)):
        yield


def weights_path(name: str) -> Path:
    """Path of the safetensors file of network ``name``."""
    return weights_dir() / f"{name}.safetensors"


def record_path(name: str) -> Path:
    """Path of the JSON metadata record of network ``name``."""
    return weights_dir() / f"{name}.json"


def load_state(path: Path) -> dict[str, torch.Tensor]:
    """Read a safetensors file into a CPU state dict.

    Raises:
        WeightsNotFoundError: the file does not exist.
        CheckpointError: the file is not a readable safetensors file.
    """
    if not path.is_file():
        raise WeightsNotFoundError(
            f"weights not found: {path}. Retrain them with `tir train-tools` "
            f"(or point ${WEIGHTS_ENV} at a folder holding {path.name})."
        )
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        return load_file(str(path), device="cpu")
    except (SafetensorError, OSError, ValueError, RuntimeError) as err:
        raise CheckpointError(f"cannot read weights file {path}: {err}") from err


def load_into(net: nn.Module, path: Path) -> nn.Module:
    """Load ``path`` into ``net`` (strict), set eval mode and freeze it; return ``net``.

    Raises:
        WeightsNotFoundError: the file does not exist.
        CheckpointError: unreadable, or its tensors do not fit ``net``.
    """
    state = load_state(path)
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError as err:
        raise CheckpointError(
            f"weights file {path} does not fit {type(net).__name__}: {err}"
        ) from err
    net.eval()
    for p in net.parameters():
        p.requires_grad_(False)
    return net


def save_weights(net: nn.Module, path: Path, record: Mapping[str, Any]) -> None:
    """Write ``net``'s state (float32) as safetensors and ``record`` as JSON beside it.

    Atomically, as :func:`save_state`.
    """
    state = {
        k: v.detach().to("cpu", torch.float32).contiguous() for k, v in net.state_dict().items()
    }
    save_state(state, path, record)


def save_state(
    state: Mapping[str, torch.Tensor], path: Path, record: Mapping[str, Any], indent: int = 2
) -> None:
    """Write ``state`` as safetensors and ``record`` as JSON beside it, atomically.

    Both files are written to temporary names first and renamed only when both are complete:
    a kill leaves the old pair or the new one, never a mix.
    """
    from safetensors.torch import save_file

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp, tmp_json = path.with_name(f".{path.name}.tmp"), path.with_name(f".{path.stem}.json.tmp")
    save_file(dict(state), str(tmp), metadata={"name": path.stem})
    tmp_json.write_text(json.dumps(dict(record), indent=indent) + "\n")
    tmp_json.replace(path.with_suffix(".json"))
    tmp.replace(path)


def checked_record(name: str, label: str, retrain: str) -> dict[str, Any]:
    """The JSON record of network ``name``, or a named error that says how to get one.

    Args:
        name: File stem of the weights and record.
        label: What the network is, for the messages (``"perception"``).
        retrain: What to do about it (``"retrain with `tir train ...` or ..."``).

    Raises:
        WeightsNotFoundError: neither the record nor the weights exist.
        CheckpointError: the weights exist without their record, or the record is unreadable.
    """
    path, weights = record_path(name), weights_path(name)
    if not path.is_file():
        if not weights.is_file():
            raise WeightsNotFoundError(f"{label} weights not found: {weights}; {retrain}")
        raise CheckpointError(f"{label} record missing: {path}; {retrain}")
    try:
        return dict(json.loads(path.read_text()))
    except (OSError, ValueError) as err:
        raise CheckpointError(f"cannot read {label} record {path}: {err}") from err


def read_record(name: str) -> dict[str, Any]:
    """The JSON record of network ``name`` (empty when there is none)."""
    path = record_path(name)
    return json.loads(path.read_text()) if path.is_file() else {}
