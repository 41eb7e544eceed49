"""Check that ``tir restore`` leaves a clean photo alone and removes real noise.

For each held-out corpus test photo (the ones that do not ship with the repo), at the size
``tir restore`` runs one episode on (long side 1024; larger photos are planned on a crop and
restored in tiles):

* **clean**: the photo itself goes through ``tir restore`` (the exact command-line path); the
  PSNR of the result against the photo says how much it changed (above 40 dB: left alone);
* **noisy**: Gaussian noise of sigma 20 (0-255 scale) added, written as PNG, restored; the
  PSNR against the clean photo before and after is the gain;
* **dark** (``--dark``): the photo darkened as the protocol darkens (HSV value to the power
  1/0.6, :class:`tir_env.degradations.agenticir.Dark`'s gamma map at its middle), restored;
* **low light** (``--low-light``): that darkened copy with Gaussian noise of sigma
  :data:`LOW_LIGHT_SIGMA` added after the darkening, as a sensor adds it to a dim exposure;
* **jpeg** (``--jpeg``): the photo saved as a JPEG of quality :data:`JPEG_QUALITY`, as a phone
  or a web page saves it: an everyday photo, not the protocol's heavy compression (quality
  10-29), which an agent should leave as it is.
* **mild noise** and **faint noise** (``--mild``): Gaussian noise of sigma :data:`MILD_SIGMAS`
  (10 and 5), a phone's or a raised ISO's, below AgenticIR's range (sigma 20-50), which a
  user's photo has far more often.
* **phone** (``--phone``): sensor noise of sigma :data:`PHONE_SIGMA`, then saved as a JPEG of
  quality :data:`PHONE_QUALITY`, as a phone saves a dim scene: the compression smooths the
  noise it keeps, so it reads less noisy than it is.
* **rain** (``--rain``): rain streaks as the protocol adds them
  (:class:`tir_env.degradations.agenticir.Rain`), parameters drawn for each photo from a seed
  of its name: a rainy photo, whose streaks every agent should take out.

``--side 0`` checks the photos at the size the corpus holds them (long side 1536), which
``tir restore`` plans on a centre crop and applies in tiles; ``--side native`` at their files' own
size (up to 6028 px: a camera's, where the centre crop the plan is made on is a small part of
the photo).

``--images corpus:val`` checks the val photos instead (for choices; the test photos report),
``--agent`` and ``--agent-arg`` another agent or its options.

Usage::

    python -m benchmarks.restore_check            # writes benchmarks/results/restore_check.json
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import io
import json
import re
import shlex
import tempfile
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from tir_env import data
from tir_env.files import write_text_atomic
from tir_env.images import load_image, resize_u8, save_image, u8_to_batch

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "restore_check.json"
SIDE = 1024
#: Sensor noise on the low-light copy (0-255 scale): after the darkening, so it is as strong
#: in the shadows as in the highlights, as in a dim exposure.
LOW_LIGHT_SIGMA = 10.0
#: Quality of the everyday JPEG copy (``--jpeg``).
JPEG_QUALITY = 80
#: Sigma of the mild and the faint noise copies (``--mild``), 0-255 scale.
MILD_SIGMAS = {"mild_noise": 10.0, "faint_noise": 5.0}
#: Sensor noise (0-255 scale) and JPEG quality of the phone copy (``--phone``).
PHONE_SIGMA = 8.0
PHONE_QUALITY = 85
#: The options that add a kind of copy, in the order a report's command names them.
COPY_FLAGS = ("dark", "low_light", "jpeg", "mild", "phone", "rain")
#: ``--side``'s value for the photos' own size (the files as they are, no downscaling).
NATIVE = "native"


def _side(text: str) -> int | str:
    """``--side``'s value: a long side in pixels, 0, or :data:`NATIVE`."""
    if text == NATIVE:
        return NATIVE
    try:
        side = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a long side in pixels, 0 or {NATIVE}, got {text!r}"
        ) from None
    if side < 0:
        raise argparse.ArgumentTypeError(f"a long side is 0 or more, got {side}")
    return side


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR of ``a`` against ``b``, ``a`` resized to ``b``'s size first when they differ.

    An agent may super-resolve a photo that was not small (``tir restore`` writes what it
    made, 4x larger); it is scored as the env scores any image against its reference, at the
    reference's size (AgenticIR's scorer).
    """
    from tir_env.images import resize_u8
    from tir_env.metrics.fast import psnr

    if a.shape[:2] != b.shape[:2]:
        a = resize_u8(a, (int(b.shape[0]), int(b.shape[1])))
    return float(psnr(u8_to_batch(a), u8_to_batch(b))[0])


def restore(
    path: Path, out: Path, agent: str, agent_args: Sequence[str] = ()
) -> tuple[np.ndarray, str]:
    """Run ``tir restore`` on ``path``; return the result and what it printed."""
    from benchmarks.cli import main

    printed = io.StringIO()
    options = [a for arg in agent_args for a in ("--agent-arg", arg)]
    with contextlib.redirect_stdout(printed):
        code = main(
            ["restore", str(path), "-o", str(out), "--agent", agent, "--overwrite", *options]
        )
    if code != 0:
        raise RuntimeError(f"tir restore exited {code} on {path}: {printed.getvalue()}")
    return load_image(out), printed.getvalue()


def _noisy(image: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """``image`` with Gaussian noise of ``sigma`` (0-255 scale), clipped and rounded to uint8."""
    return np.clip(image + rng.normal(0, sigma, image.shape), 0, 255).round().astype(np.uint8)


def everyday_jpeg(clean: np.ndarray, quality: int = JPEG_QUALITY) -> np.ndarray:
    """``clean`` saved as a JPEG of ``quality`` and read back, uint8."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(clean).save(buffer, "JPEG", quality=quality)
    buffer.seek(0)
    return np.asarray(Image.open(buffer).convert("RGB"))


def darkened(clean: np.ndarray) -> np.ndarray:
    """``clean`` darkened by the protocol's gamma map at its middle (gamma 0.6), uint8."""
    from tir_env.degradations import make_degradation
    from tir_env.images import batch_to_u8

    dark = make_degradation("dark").apply(u8_to_batch(clean), {"mode": 1.0, "gamma": 0.6})
    return batch_to_u8(dark)


def rainy(clean: np.ndarray, image_id: str) -> np.ndarray:
    """``clean`` with the protocol's rain, drawn from a seed of ``image_id`` (uint8).

    Each photo gets its own streaks (density, length, angle within 30 degrees of vertical),
    the same ones at every run.
    """
    from tir_env.degradations import make_degradation
    from tir_env.images import batch_to_u8

    rain = make_degradation("rain")
    params = rain.sample(np.random.default_rng(zlib.crc32(image_id.encode())))
    return batch_to_u8(rain.apply(u8_to_batch(clean), params))


def check_photo(
    image_id: str,
    clean: np.ndarray,
    agent: str,
    tmp: Path,
    agent_args: Sequence[str] = (),
    dark: bool = False,
    low_light: bool = False,
    jpeg: bool = False,
    mild: bool = False,
    phone: bool = False,
    rain: bool = False,
) -> dict[str, Any]:
    """The checks on one photo: clean, noisy, and the copies its flags ask for.

    ``dark``: darkened; ``low_light``: darkened and noisy; ``jpeg``: an everyday JPEG;
    ``mild``: mild and faint noise (:data:`MILD_SIGMAS`, drawn apart, so the other copies keep
    their noise); ``phone``: noisy, then a JPEG (:data:`PHONE_SIGMA`, :data:`PHONE_QUALITY`);
    ``rain``: the protocol's rain (:func:`rainy`).
    """
    rng = np.random.default_rng(20)
    noisy = _noisy(clean, 20.0, rng)
    row: dict[str, Any] = {"image": image_id, "size": list(clean.shape[:2])}
    kinds = [("clean", clean), ("noisy", noisy)] + ([("dark", darkened(clean))] if dark else [])
    if low_light:
        kinds.append(("low_light", _noisy(darkened(clean), LOW_LIGHT_SIGMA, rng)))
    if jpeg:
        kinds.append(("jpeg", everyday_jpeg(clean)))
    if mild:
        mild_rng = np.random.default_rng(21)
        kinds += [(kind, _noisy(clean, sigma, mild_rng)) for kind, sigma in MILD_SIGMAS.items()]
    if phone:
        noisy_sensor = _noisy(clean, PHONE_SIGMA, np.random.default_rng(22))
        kinds.append(("phone", everyday_jpeg(noisy_sensor, PHONE_QUALITY)))
    if rain:
        kinds.append(("rain", rainy(clean, image_id)))
    for kind, image in kinds:
        path = save_image(tmp / f"{kind}.png", image)
        restored, printed = restore(path, tmp / f"{kind}_out.png", agent, agent_args)
        row[kind] = {
            "psnr_in": None if kind == "clean" else _psnr(image, clean),
            "psnr_out": _psnr(restored, clean),
            **({"size_out": list(restored.shape[:2])} if restored.shape != image.shape else {}),
            "perceived": next(
                (line for line in printed.splitlines() if line.startswith("perceived")), ""
            ),
            "calls": [
                line.split()[1]
                for line in printed.splitlines()
                if line[:1].isdigit() and line.split()[1] != "STOP"
            ],
        }
    return row


def _command(args: argparse.Namespace, given_json: bool) -> str:
    """The command that makes the report ``args`` describe (``--json`` only when given)."""
    command = "python -m benchmarks.restore_check"
    if args.agent != "fixed":
        command += f" --agent {args.agent}"
    command += "".join(f" --agent-arg {a}" for a in args.agent_arg)
    if args.images != "corpus:test":
        command += f" --images {shlex.quote(args.images)}"  # corpus:train@4[0/2] is a glob
    if args.side != SIDE:
        command += f" --side {args.side}"
    for copy in COPY_FLAGS:
        if getattr(args, copy):
            command += f" --{copy.replace('_', '-')}"
    if args.label:
        command += f" --label {shlex.quote(args.label)}"
    if given_json:
        command += f" --json {args.json}"
    return command


def main(argv: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """Run the checks on the held-out photos; write and print the results."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--agent", default="fixed")
    parser.add_argument(
        "--agent-arg", action="append", default=[], help="AGENT.KEY=VALUE, as tir restore's"
    )
    parser.add_argument(
        "--images",
        default="corpus:test",
        help="corpus split whose photos are checked (corpus:test skips the test photos that "
        "ship with the repo): corpus:val for choices, corpus:test to report",
    )
    parser.add_argument(
        "--json",
        type=Path,
        default=None,
        help=f"where the results go (default {RESULTS.name}, restore_check_SPLIT.json for "
        "another split than corpus:test)",
    )
    parser.add_argument(
        "--side",
        type=_side,
        default=SIDE,
        help=f"long side the photos are checked at (default {SIDE}: one episode each; 0: as "
        "the corpus holds them, planned on a centre crop and applied in tiles; native: at "
        "their files' own size)",
    )
    parser.add_argument(
        "--label",
        default="",
        help="what the report's column is called in the docs' tables (default: its agent "
        "options); for reports of the same options from different code",
    )
    parser.add_argument("--dark", action="store_true", help="check a darkened copy too")
    parser.add_argument(
        "--low-light", action="store_true", help="check a darkened copy with sensor noise too"
    )
    parser.add_argument(
        "--jpeg", action="store_true", help=f"check a JPEG copy (quality {JPEG_QUALITY}) too"
    )
    parser.add_argument(
        "--mild", action="store_true", help="check copies with mild and faint noise (sigma 10, 5)"
    )
    parser.add_argument(
        "--phone",
        action="store_true",
        help=f"check a phone's copy too (noise of sigma {PHONE_SIGMA:g}, then a JPEG of quality "
        f"{PHONE_QUALITY})",
    )
    parser.add_argument(
        "--rain", action="store_true", help="check a copy with the protocol's rain streaks too"
    )
    args = parser.parse_args(argv)
    given_json = args.json is not None
    if not given_json and (args.side != SIDE or any(getattr(args, c) for c in COPY_FLAGS)):
        parser.error(
            "--side, --dark, --low-light, --jpeg, --mild, --phone and --rain make another "
            "report: name --json"
        )
    if args.json is None:  # a val run never overwrites the test report
        # the spec after its "corpus:", as a file name: corpus:val@4[6:] -> val@4_6__
        split = re.sub(r"[^\w@.-]", "_", args.images.partition(":")[2] or args.images)
        args.json = (
            RESULTS if args.images == "corpus:test" else RESULTS.with_stem(f"restore_check_{split}")
        )
    torch.set_num_threads(1)
    corpus, bundled = data.source(args.images), data.bundled("test")
    if args.side == NATIVE:
        corpus = dataclasses.replace(corpus, max_side=None)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for image_id in corpus.ids:
            if image_id.split("/")[-1] in bundled.ids:
                continue
            photo = corpus.load(image_id)
            clean = photo
            if args.side and args.side != NATIVE:
                scale = args.side / max(photo.shape[:2])
                size = (round(photo.shape[0] * scale), round(photo.shape[1] * scale))
                clean = resize_u8(photo, size)
            rows.append(
                check_photo(
                    image_id,
                    clean,
                    args.agent,
                    Path(tmp),
                    args.agent_arg,
                    args.dark,
                    args.low_light,
                    args.jpeg,
                    args.mild,
                    args.phone,
                    args.rain,
                )
            )
            print(json.dumps(rows[-1]))
    command = _command(args, given_json)
    results = {
        **({"label": args.label} if args.label else {}),
        "command": command,
        "agent": args.agent,
        "agent_args": list(args.agent_arg),
        "images": args.images,
        "side": args.side,
        "rows": rows,
    }
    write_text_atomic(args.json, json.dumps(results, indent=1) + "\n")
    return rows


#: The kinds of copy a report may hold, in the order its tables list them.
KINDS = ("clean", "noisy", "dark", "low_light", "jpeg", *MILD_SIGMAS, "phone", "rain")


def _said(result: dict[str, Any]) -> str:
    """One restoration's PSNR and the tools it called, for :func:`compare_markdown`."""
    tools = ", ".join(call.split("(")[0] for call in result["calls"]) or "no call"
    return f"{result['psnr_out']:.2f} dB ({tools})"


#: The copies an agent should leave as they are: a clean photo and an everyday JPEG.
LEAVE_ALONE = ("clean", "jpeg")


def _left_alone_lines(rows: Sequence[dict[str, Any]], kinds: Sequence[str]) -> list[str]:
    """The photos one report changed where it should have left them alone (:data:`LEAVE_ALONE`).

    A clean photo counts as changed below 40 dB against itself, a JPEG copy where its PSNR to
    the clean photo moved by more than 0.1 dB.
    """
    changed = []
    for row in rows:
        for kind in (k for k in LEAVE_ALONE if k in kinds):
            result = row[kind]
            moved = (
                result["psnr_out"] < 40
                if kind == "clean"
                else abs(result["psnr_out"] - result["psnr_in"]) > 0.1
            )
            if moved:
                changed.append(f"- `{row['image']}`, {kind}: {_said(result)}")
    return changed or ["Every clean photo and JPEG copy is left as it was."]


def _commands_line(reports: Sequence[dict[str, Any]]) -> str:
    """How the reports were made, for the line above their table.

    The first report's command and the others' options; or, where a report has a label
    (reports of the same options made by different code), each report's label and command.
    """
    if any(r.get("label") for r in reports):
        return "; ".join(f"{r.get('label') or 'unlabelled'}: `{r['command']}`" for r in reports)
    others = ", ".join(f"`{' '.join(r['agent_args'])}`" for r in reports[1:] if r["agent_args"])
    return f"`{reports[0]['command']}`" + (f" and the same with {others}" if others else "")


def compare_markdown(paths: Sequence[Path]) -> list[str]:
    """A table of one or more reports of the same photos: PSNR per kind, and what changed.

    Each report is a column (its agent options); a row per kind of copy: the input's mean PSNR
    to the clean photo, then each report's mean after ``tir restore`` (for ``clean``, how many
    photos end below 40 dB against themselves: changed). Then each photo and kind where the
    reports' results differ by more than 0.1 dB, with the calls each made; for one report, the
    photos it changed where it should have left them alone (:func:`_left_alone_lines`).
    """
    reports = [json.loads(Path(path).read_text()) for path in paths]
    names = [
        r.get("label") or " ".join(r["agent_args"]) or f"`{r['agent']}`, no options"
        for r in reports
    ]
    kinds = [k for k in KINDS if all(k in row for r in reports for row in r["rows"])]
    first = reports[0]["rows"]
    lines = [_commands_line(reports) + f": {len(first)} photos ({reports[0]['images']}).", ""]
    lines += [
        "| copy | input | " + " | ".join(names) + " |",
        "|---|---:|" + "---:|" * len(names),
    ]
    for kind in kinds:
        if kind == "clean":
            cells = [
                f"{sum(row['clean']['psnr_out'] < 40 for row in r['rows'])} changed"
                for r in reports
            ]
            lines.append("| clean | | " + " | ".join(cells) + " |")
            continue
        mean_in = float(np.mean([row[kind]["psnr_in"] for row in first]))
        means = [float(np.mean([row[kind]["psnr_out"] for row in r["rows"]])) for r in reports]
        lines.append(
            f"| {kind.replace('_', ' ')} | {mean_in:.2f} | "
            + " | ".join(f"{m:.2f}" for m in means)
            + " |"
        )
    if len(reports) == 1:
        return lines + ["", *_left_alone_lines(first, kinds)]
    differing = []
    for i, row in enumerate(first):
        for kind in kinds:
            outs = [r["rows"][i][kind] for r in reports]
            if max(o["psnr_out"] for o in outs) - min(o["psnr_out"] for o in outs) > 0.1:
                said = "; ".join(_said(o) for o in outs)
                differing.append(f"- `{row['image']}`, {kind.replace('_', ' ')}: {said}")
    lines += ["", *(differing or ["No photo ends differently."])]
    return lines


if __name__ == "__main__":
    main()
