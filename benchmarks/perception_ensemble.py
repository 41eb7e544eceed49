r"""Combine trained perception networks into one :class:`PerceptionEnsemble` weights file.

The ensemble's outputs are the mean of its members' raw outputs. Its thresholds are tuned
afterwards on the val photos like any network's. With ``--pick TYPE=K`` a type's presence and
severity come from member K alone (counted from 0) and ``--rest K`` takes every other output
from member K: each output is then one member's, read with that member's own threshold, so
no retuning is needed::

    python -m benchmarks.perception_ensemble --out runs/ens \\
        tir_env/assets/learned/perception.safetensors runs/perc_cnn/perception.safetensors
    python -m benchmarks.train_perception --retune --init runs/ens/perception.safetensors \\
        --out runs/ens --samples 0 --listed-order 0.5
    # darkness and haze from the shipped network, the rest from the CNN
    python -m benchmarks.perception_ensemble --out runs/hybrid --pick dark=0 haze=0 --rest 1 \
        tir_env/assets/learned/perception.safetensors runs/perc_cnn/perception.safetensors
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tir_env.errors import CheckpointError, OutputExistsError
from tir_env.perception import N_OUTPUTS, build
from tir_env.tools.learned.nets import PerceptionEnsemble
from tir_env.tools.learned.weights import load_into, save_weights


def output_weights(
    records: Sequence[dict[str, Any]], pick: dict[str, int], rest: int | None
) -> list[list[float]] | None:
    """Members x outputs weights (``None`` when nothing is picked).

    Each picked type's presence and severity come from its member, every other output from
    ``rest`` (``None``: the mean of all members).

    Raises:
        ValueError: an unknown type or a member index out of range.
    """
    if not pick and rest is None:
        return None
    n = len(records)
    types, outputs = records[0]["types"], records[0]["outputs"]
    for name, k in [*pick.items(), *([("--rest", rest)] if rest is not None else [])]:
        if name != "--rest" and name not in types:
            raise ValueError(f"--pick {name}: not a perception type ({', '.join(types)})")
        if not 0 <= k < n:
            raise ValueError(f"{name}: member {k} of {n} (counted from 0)")
    width = max(end for _, end in outputs.values())
    column = [[1.0] * n if rest is None else [float(m == rest) for m in range(n)]] * width
    column = [list(c) for c in column]
    for name, k in pick.items():
        i = types.index(name)
        for head in ("presence", "severity"):
            column[outputs[head][0] + i] = [float(m == k) for m in range(n)]
    return [[column[o][m] for o in range(width)] for m in range(n)]


def _thresholds(records: Sequence[dict[str, Any]], pick: dict[str, int], rest: int | None) -> dict:
    """Each type's threshold from the member it is read from (the first's for a mean).

    Raises:
        CheckpointError: a member that reads a type has no threshold for it.
    """
    out = {}
    default = records[0 if rest is None else rest].get("thresholds", {})
    for name in records[0].get("types") or list(default):
        k = pick.get(name, 0 if rest is None else rest)
        limits = records[k].get("thresholds", {})
        if name not in limits:
            raise CheckpointError(f"member {k}'s record has no threshold for {name}")
        out[name] = limits[name]
    return out


def combine(
    members: Sequence[Path],
    out: Path,
    pick: dict[str, int] | None = None,
    rest: int | None = None,
) -> dict[str, Any]:
    """Write ``out/perception.safetensors`` and its record; return the record.

    Raises:
        OutputExistsError: ``out`` already holds perception weights (nothing is overwritten).
        CheckpointError: a member's weights do not fit its record's architecture.
        ValueError: a ``pick`` or ``rest`` that names no type or member.
    """
    pick = dict(pick or {})
    target = out / "perception.safetensors"
    if target.exists():
        raise OutputExistsError(f"{target} exists: choose a new --out")
    records = [json.loads(Path(m).with_suffix(".json").read_text()) for m in members]
    nets = [
        load_into(build(r["architecture"]), Path(m)) for r, m in zip(records, members, strict=True)
    ]
    weights = output_weights(records, pick, rest)
    architecture = {
        "class": "PerceptionEnsemble",
        "classes": N_OUTPUTS,
        "members": [r["architecture"] for r in records],
    }
    if weights is not None:
        architecture["output_weights"] = weights
    record = {
        "name": "perception",
        "architecture": architecture,
        **{k: records[0][k] for k in ("what", "outputs", "psnr_range", "types") if k in records[0]},
        "thresholds": _thresholds(records, pick, rest),
        "member_weights": [str(m) for m in members],
        "member_commands": [r.get("command", "") for r in records],
        "command": " ".join(["python -m benchmarks.perception_ensemble", *sys.argv[1:]]),
    }
    out.mkdir(parents=True, exist_ok=True)
    save_weights(PerceptionEnsemble(nets, weights), target, record)
    return record


def main(argv: Sequence[str] | None = None) -> None:
    """Parse the command line and combine."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("members", nargs="+", type=Path, help="perception.safetensors files")
    parser.add_argument("--out", type=Path, required=True, help="a new folder")
    parser.add_argument(
        "--pick", nargs="+", default=[], metavar="TYPE=K", help="a type read by member K only"
    )
    parser.add_argument("--rest", type=int, default=None, help="every other output from member K")
    args = parser.parse_args(argv)
    try:
        pick = {t: int(k) for t, _, k in (p.partition("=") for p in args.pick)}
        record = combine(args.members, args.out, pick, args.rest)
    except (ValueError, CheckpointError) as err:
        parser.error(str(err))
    print(json.dumps(record["thresholds"], indent=1))


if __name__ == "__main__":
    main()
