r"""Combine trained perception networks into one :class:`PerceptionEnsemble` weights file.

The ensemble's outputs are the mean of its members' raw outputs. Its thresholds are tuned
afterwards on the val photos like any network's::

    python -m benchmarks.perception_ensemble --out runs/ens \\
        tir_env/assets/learned/perception.safetensors runs/perc_cnn/perception.safetensors
    python -m benchmarks.train_perception --retune --init runs/ens/perception.safetensors \\
        --out runs/ens --samples 0 --listed-order 0.5
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tir_env.errors import OutputExistsError
from tir_env.perception import N_OUTPUTS, build
from tir_env.tools.learned.nets import PerceptionEnsemble
from tir_env.tools.learned.weights import load_into, save_weights


def combine(members: Sequence[Path], out: Path) -> dict[str, Any]:
    """Write ``out/perception.safetensors`` and its record; return the record.

    Raises:
        OutputExistsError: ``out`` already holds perception weights (nothing is overwritten).
        CheckpointError: a member's weights do not fit its record's architecture.
    """
    target = out / "perception.safetensors"
    if target.exists():
        raise OutputExistsError(f"{target} exists: choose a new --out")
    records = [json.loads(Path(m).with_suffix(".json").read_text()) for m in members]
    nets = [
        load_into(build(r["architecture"]), Path(m)) for r, m in zip(records, members, strict=True)
    ]
    record = {
        "name": "perception",
        "architecture": {
            "class": "PerceptionEnsemble",
            "classes": N_OUTPUTS,
            "members": [r["architecture"] for r in records],
        },
        **{k: records[0][k] for k in ("what", "outputs", "psnr_range", "types") if k in records[0]},
        "thresholds": records[0].get("thresholds", {}),
        "member_weights": [str(m) for m in members],
        "member_commands": [r.get("command", "") for r in records],
        "command": " ".join(["python -m benchmarks.perception_ensemble", *sys.argv[1:]]),
    }
    out.mkdir(parents=True, exist_ok=True)
    save_weights(PerceptionEnsemble(nets), target, record)
    return record


def main(argv: Sequence[str] | None = None) -> None:
    """Parse the command line and combine."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("members", nargs="+", type=Path, help="perception.safetensors files")
    parser.add_argument("--out", type=Path, required=True, help="a new folder")
    args = parser.parse_args(argv)
    print(json.dumps(combine(args.members, args.out)["architecture"], indent=1))


if __name__ == "__main__":
    main()
