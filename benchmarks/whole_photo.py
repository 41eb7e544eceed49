"""Which agent to trust on a whole photo: the ``tir restore`` path, scored against the clean.

The leaderboard scores 128 px patches. A practitioner restores whole photos with no reference,
so this protocol degrades whole photos (longest side ``--side``, 256 by default to keep the
search agents affordable; ``tir restore`` runs episodes on at most 1024 px, tiles beyond), restores
each with every agent the way ``tir restore`` does (adaptive no-reference reward over ``tirqa``
and NIQE, the photo passed as ``options["image"]``, the tools the agent needs added), and only
then compares the result with the clean photo.

Usage::

    python -m benchmarks.whole_photo --agents fixed,greedy,ppo,exhaustive --out docs/whole_photo.md

Default photos: the photo corpus' test split (``--images corpus:test``; ``--limit 5`` keeps the
five that do not ship with the repo), never trained or tuned on. An agent may carry options
(``--agents exhaustive,exhaustive:learned=``: the same agent with and without the learned
dehazing, side by side).
"""

from __future__ import annotations

import argparse
import json
import shlex
import statistics
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from agents.base import Agent, make_agent, rollout
from benchmarks.evaluate import with_required_tools
from benchmarks.perception_cv import agent_spec, agent_specs
from tir_env import data
from tir_env.degradations import degrade
from tir_env.env import TIREnv
from tir_env.images import ImageU8, batch_to_u8, resize_u8, u8_to_batch

#: Single degradations and pairs a photo commonly has.
COMBOS: tuple[tuple[str, ...], ...] = (
    ("noise",),
    ("haze",),
    ("motion_blur",),
    ("dark", "noise"),
    ("noise", "jpeg"),
)


def photos(side: int, images: str = "corpus:test", limit: int | None = None) -> dict[str, ImageU8]:
    """The photos of an image source, longest side ``side``, sides % 4 == 0."""
    src = data.source(images)
    chosen = {i: src.load(i) for i in src.ids[:limit]}
    out = {}
    for name, image in chosen.items():
        h, w = image.shape[:2]
        scale = side / max(h, w)
        size = (max(4, round(h * scale) // 4 * 4), max(4, round(w * scale) // 4 * 4))
        out[name] = resize_u8(image, size)
    return out


def psnr(a: ImageU8, b: ImageU8) -> float:
    """PSNR in dB of ``a`` against ``b`` (``a`` resized to ``b``'s size if an agent upscaled)."""
    from tir_env.metrics.fast import psnr as psnr_batch

    if a.shape != b.shape:
        a = resize_u8(a, b.shape[:2])
    # in float64 on [0, 1]: the floor 1e-10 / 255**2 is the same 148 dB cap as on [0, 255]
    x, y = u8_to_batch(a).double(), u8_to_batch(b).double()
    return float(psnr_batch(x, y, eps=0.0, floor=1e-10 / 255.0**2)[0])


def _build(spec: str) -> Agent:
    """The agent of a spec: ``NAME`` or ``NAME:KEY=VALUE[,...]`` (:func:`agent_spec`)."""
    name, options = agent_spec(spec)
    return make_agent(name, **options)


def run(
    agents: Sequence[str],
    side: int,
    max_steps: int,
    seed: int,
    images: str = "corpus:test",
    limit: int | None = None,
    combos: Sequence[tuple[str, ...]] = COMBOS,
) -> list[dict[str, object]]:
    """One row per (agent, photo, combination): PSNR of input and output, calls, wall time."""
    env_kwargs = {"reward": "adaptive", "metrics": ("tirqa", "niqe"), "max_steps": max_steps}
    built = {spec: _build(spec) for spec in agents}
    envs = {name: TIREnv(**with_required_tools(env_kwargs, a)) for name, a in built.items()}
    rows: list[dict[str, object]] = []
    for k, (name, clean) in enumerate(photos(side, images, limit).items()):
        for j, combo in enumerate(combos):
            rng = np.random.default_rng([seed, k, j])
            degraded = batch_to_u8(degrade(u8_to_batch(clean), combo, rng)[0])
            for agent_name, agent in built.items():
                env = envs[agent_name]
                ep = rollout(env, agent, seed=0, options={"image": degraded, "image_id": name})
                rows.append(
                    {
                        "agent": agent_name,
                        "photo": name,
                        "combo": "+".join(combo),
                        "psnr_in": psnr(degraded, clean),
                        "psnr_out": psnr(env.current_image(), clean),
                        "calls": sum(1 for r in ep.records if r.call is not None),
                        "executions": ep.tool_executions,
                        "wall_s": ep.wall_time_s,
                    }
                )
                print(
                    f"{agent_name:12s} {name:14s} {rows[-1]['combo']:12s} "
                    f"{rows[-1]['psnr_in']:.2f} -> {rows[-1]['psnr_out']:.2f}",
                    flush=True,
                )
    return rows


def run_from_args(args: argparse.Namespace) -> list[dict[str, object]]:
    """:func:`run` with a parsed command line's agents, photos and degradations."""
    return run(
        agent_specs(args.agents),
        args.side,
        args.max_steps,
        args.seed,
        args.images,
        args.limit,
        args.combos,
    )


def parse_combos(text: str) -> tuple[tuple[str, ...], ...]:
    """``jpeg;noise+jpeg`` as combinations of AgenticIR degradation names.

    Raises:
        argparse.ArgumentTypeError: empty, or a name that is not an AgenticIR degradation.
    """
    from tir_env.degradations.protocols import AGENTICIR_TYPES

    combos = tuple(tuple(n.strip() for n in c.split("+")) for c in text.split(";") if c.strip())
    unknown = sorted({n for c in combos for n in c} - set(AGENTICIR_TYPES))
    if not combos or unknown:
        raise argparse.ArgumentTypeError(
            f"{text!r}: want names of {', '.join(AGENTICIR_TYPES)} joined by '+', "
            "combinations by ';'" + (f" (unknown: {', '.join(unknown)})" if unknown else "")
        )
    return combos


def markdown(rows: Sequence[dict[str, object]], command: str, wall: bool = True) -> str:
    """Per agent and combination: mean PSNR gain over the photos; then the overall mean.

    ``wall``: with the wall time per episode (a page of measurements; the docs that keep
    only what a rerun reproduces leave it out).
    """
    agents = list(dict.fromkeys(str(r["agent"]) for r in rows))
    combos = list(dict.fromkeys(str(r["combo"]) for r in rows))

    def gain(agent: str, combo: str | None = None) -> float:
        sel = [r for r in rows if r["agent"] == agent and combo in (None, r["combo"])]
        return statistics.fmean(float(r["psnr_out"]) - float(r["psnr_in"]) for r in sel)  # type: ignore[arg-type]

    def mean(agent: str, key: str) -> float:
        return statistics.fmean(float(r[key]) for r in rows if r["agent"] == agent)  # type: ignore[arg-type]

    n_photos = len({r["photo"] for r in rows})
    head = ["agent", *combos, "mean ΔPSNR", "calls", "tool executions", *(["wall s"] * wall)]
    lines = [
        "# Whole photos, no reference\n",
        f"Made by `{command}`: {n_photos} photos x {len(combos)} degradations, "
        "PSNR gain (dB) of the restored photo over the degraded one, against the clean photo, "
        "which the agents never see.\n",
        "| " + " | ".join(head) + " |",
        "|---|" + "---:|" * (len(head) - 1),
    ]
    for a in sorted(agents, key=lambda a: -gain(a)):
        cells = [f"{gain(a, c):+.2f}" for c in combos]
        lines.append(
            f"| {a} | "
            + " | ".join(cells)
            + f" | **{gain(a):+.2f}** | {mean(a, 'calls'):.1f} | {mean(a, 'executions'):.1f} |"
            + (f" {mean(a, 'wall_s'):.2f} |" if wall else "")
        )
    return "\n".join(lines) + "\n"


def paired(rows: Sequence[dict[str, object]], base: str, other: str) -> tuple[float, float, int]:
    """``other`` minus ``base`` on the same photos and degradations: mean, standard error, photos.

    The standard error is over the photos (each photo's mean difference): the episodes of one
    photo share its content, so they are not independent. Raises ``ValueError`` where the two
    agents did not run the same episodes.
    """

    def outputs(agent: str) -> dict[tuple[str, str], float]:
        mine = (r for r in rows if r["agent"] == agent)
        return {(str(r["photo"]), str(r["combo"])): float(r["psnr_out"]) for r in mine}  # type: ignore[arg-type]

    a, b = outputs(base), outputs(other)
    if set(a) != set(b):
        raise ValueError(f"{base} and {other} did not run the same photos and degradations")
    by_photo: dict[str, list[float]] = {}
    for key in a:
        by_photo.setdefault(key[0], []).append(b[key] - a[key])
    means = np.array([np.mean(v) for v in by_photo.values()])
    se = float(means.std(ddof=1) / np.sqrt(len(means))) if len(means) > 1 else float("nan")
    return float(np.mean([b[k] - a[k] for k in a])), se, len(means)


def paired_lines(rows: Sequence[dict[str, object]]) -> list[str]:
    """Each agent against the first one named (:func:`paired`), one line each."""
    agents = list(dict.fromkeys(str(r["agent"]) for r in rows))
    lines = []
    for other in agents[1:]:
        mean, se, n = paired(rows, agents[0], other)
        lines.append(
            f"`{other}` minus `{agents[0]}`: {mean:+.3f} dB an episode "
            f"(se {se:.3f} over {n} photos, paired)."
        )
    return lines


def report_markdown(result: dict[str, Any]) -> list[str]:
    """A ``--json`` report as doc lines: its command, the table and the paired lines."""
    rows = result["rows"]
    table = markdown(rows, result["command"], wall=False).splitlines()[2:]  # no page heading
    return [*table, "", *paired_lines(rows)]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the protocol and print (and optionally write) the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--agents",
        default="fixed,greedy,ppo,exhaustive,all-in-one",
        help="NAME or NAME:KEY=VALUE[,...] specs, comma-separated",
    )
    parser.add_argument("--side", type=int, default=256, help="longest side of each photo")
    parser.add_argument("--max-steps", type=int, default=4, help="as `tir restore`")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--images", default="corpus:test", help="image source of the photos")
    parser.add_argument("--limit", type=int, default=None, help="only the first N photos")
    parser.add_argument("--out", type=Path, default=None, help="write the Markdown table here")
    parser.add_argument(
        "--combos",
        type=parse_combos,
        default=COMBOS,
        help="degradations to apply, combinations separated by ';', a combination's by '+' "
        "(default: " + ";".join("+".join(c) for c in COMBOS) + ")",
    )
    parser.add_argument(
        "--json", type=Path, default=None, help="write the rows here (refuses an existing file)"
    )
    args = parser.parse_args(argv)
    from tir_env.files import refuse_existing, write_text_atomic

    refuse_existing(parser, args.json)
    rows = run_from_args(args)
    words = sys.argv[1:] if argv is None else list(argv)
    command = "python -m benchmarks.whole_photo " + shlex.join(words)
    table = markdown(rows, command)
    print(table)
    print("\n".join(paired_lines(rows)))
    if args.out:
        args.out.write_text(table)
    if args.json:
        write_text_atomic(
            args.json, json.dumps({"command": command, "rows": rows}, indent=1) + "\n"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
