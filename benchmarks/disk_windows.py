"""The defocus tools on whole photos with and without reading the radius window by window.

:mod:`tir_env.tools.classical.disk_windows` reads a large image's defocus radius over its
129 px windows where the centre crop shows none. This runs the ``tir restore`` path of
:mod:`benchmarks.whole_photo` twice on the same photos and degradations, with the windows off
(the centre crop only, as before) and on, and reports each agent's PSNR gain per combination
and the paired difference (the suites' 128 px crops are read the same either way).

Usage::

    python -m benchmarks.disk_windows --images corpus:val --limit 5 --side 512 \
        --json benchmarks/results/disk_windows/whole_val.json
"""

from __future__ import annotations

import argparse
import json
import shlex
import statistics
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from benchmarks.perception_cv import agent_specs
from benchmarks.whole_photo import parse_combos, run
from tir_env.files import refuse_existing, write_text_atomic
from tir_env.tools.classical import disk_windows

#: Combinations measured by default: defocus alone and with what follows it in the suites,
#: and three without it (where nothing may change).
COMBOS = (
    "defocus_blur;defocus_blur+jpeg;defocus_blur+noise;dark+defocus_blur;noise;motion_blur;jpeg"
)


def measure(args: argparse.Namespace) -> dict[str, Any]:
    """Both runs' rows, windows off then on."""
    rows, shipped = {}, disk_windows.ENABLED
    for state in (False, True):
        disk_windows.ENABLED = state
        try:
            rows["on" if state else "off"] = run(
                agent_specs(args.agents),
                args.side,
                args.max_steps,
                args.seed,
                args.images,
                args.limit,
                args.combos,
            )
        finally:
            disk_windows.ENABLED = shipped
    return rows


def summary(rows: Mapping[str, Sequence[Mapping[str, Any]]]) -> list[dict[str, Any]]:
    """Per agent and combination: mean gain off and on, the paired difference, the changed."""
    out = []
    keys = list(dict.fromkeys((str(r["agent"]), str(r["combo"])) for r in rows["off"]))
    for agent, combo in [*keys, *dict.fromkeys((a, "all") for a, _ in keys)]:

        def gains(state: str, agent: str = agent, combo: str = combo) -> list[float]:
            return [
                float(r["psnr_out"]) - float(r["psnr_in"])
                for r in rows[state]
                if r["agent"] == agent and combo in ("all", r["combo"])
            ]

        off, on = gains("off"), gains("on")
        diffs = [b - a for a, b in zip(off, on, strict=True)]
        out.append(
            {
                "agent": agent,
                "combo": combo,
                "n": len(diffs),
                "off": statistics.fmean(off),
                "on": statistics.fmean(on),
                "change": statistics.fmean(diffs),
                "changed": sum(abs(d) > 1e-6 for d in diffs),
            }
        )
    return out


def markdown(result: Mapping[str, Any]) -> list[str]:
    """The summary as a table (for the docs)."""
    lines = [
        f"`{result['command']}`: PSNR gain (dB) over the degraded photo, the centre crop's "
        "radius only (off) and read over the windows (on).",
        "",
        "| agent | degradations | photos | off | on | on - off | changed |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for s in result["summary"]:
        lines.append(
            f"| `{s['agent']}` | {s['combo']} | {s['n']} | {s['off']:+.2f} | {s['on']:+.2f} | "
            f"{s['change']:+.2f} | {s['changed']} |"
        )
    return lines


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run both, write the JSON, print the table."""
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("--agents", default="fixed", help="NAME or NAME:KEY=VALUE specs, commas")
    p.add_argument("--images", default="corpus:val")
    p.add_argument("--limit", type=int, default=5)
    p.add_argument("--side", type=int, default=512, help="longest side of each photo")
    p.add_argument("--max-steps", type=int, default=4)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--combos", type=parse_combos, default=parse_combos(COMBOS))
    p.add_argument("--json", type=Path, default=None, help="write the result (never overwritten)")
    args = p.parse_args(argv)
    refuse_existing(p, args.json)
    rows = measure(args)
    words = sys.argv[1:] if argv is None else list(argv)
    result = {
        "command": "python -m benchmarks.disk_windows " + shlex.join(words),
        "summary": summary(rows),
        "rows": rows,
    }
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(args.json, json.dumps(result, indent=1) + "\n")
    print("\n".join(markdown(result)))
    return result


if __name__ == "__main__":
    main()
