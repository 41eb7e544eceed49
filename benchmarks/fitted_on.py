"""Which protocols each shipped learned piece was fitted on, read from its own record.

AgenticIR keeps groups B and C unseen, and TIR keeps ``mio-b``, ``mio-c``, ``ood-d2`` and
``ood-d3`` for evaluation only (docs/protocols.md, section 5). A piece fitted on episodes of
those suites' combinations, even of train photos, learns which types come together there, so
its agents' rows on them are no clean test. Each piece's record (the JSON beside its weights)
says what it was fitted on: a ``protocols`` field, else the ``--protocols`` or ``--suites`` of
its ``command`` (several commands joined by ``;`` are read together), else the default its
trainer had when the record names none. :func:`markdown_rows` makes docs/protocols.md's table
from that, so the table cannot say "none" while a record says otherwise.

Usage::

    python -m benchmarks.fitted_on   # print the table
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import takewhile
from pathlib import Path

from benchmarks.perception_cv import SUITES
from benchmarks.tirqa_ceiling import EVERY
from tir_env.degradations.protocols import COMBOS

ROOT = Path(__file__).resolve().parents[1]
#: The suites kept for evaluation only: no combination of theirs is in a training protocol
#: (``mio-a`` is evaluated on and trained on, as AgenticIR's group A).
EVALUATION_ONLY: tuple[str, ...] = tuple(s for s in SUITES if s != "mio-a")
#: Flags of the trainers that name the suites or protocols they read.
PROTOCOL_FLAGS: tuple[str, ...] = ("--protocols", "--suites")


@dataclass(frozen=True)
class Piece:
    """A shipped learned piece and how to read what it was fitted on.

    Attributes:
        name: What docs call it.
        record: Its JSON record, relative to the repository root.
        default: The protocols its trainer read when the record names none.
    """

    name: str
    record: str
    default: tuple[str, ...]


#: The shipped pieces fitted on protocol episodes (perception and ``quality_gain`` draw every
#: combination at random, so no suite's; the policies' experts name their protocols in
#: ``tir experts collect``).
PIECES: tuple[Piece, ...] = (
    Piece("the crop judge", "agents/judge_weights.json", SUITES),
    Piece("the whole-photo judge", "agents/judge_whole_weights.json", SUITES),
    Piece("tuned parameters", "agents/tuned_params.json", SUITES),
    Piece("`tirqa` trees", "tir_env/assets/learned/tirqa_trees.json", SUITES),
    Piece("`ppo`'s brightening veto", "tir_env/assets/learned/bright_veto.json", SUITES),
    Piece("`ppo`'s darkness reader (an option)", "tir_env/assets/learned/dark_reader.json", SUITES),
    Piece("plan table (`oracle.plans=table`)", "agents/plan_table.json", SUITES),
)


def fitted_protocols(meta: dict, default: Sequence[str]) -> tuple[str, ...]:
    """The protocols a record says its piece was fitted on (``default`` when it says none).

    Raises:
        ValueError: a named protocol is not one :data:`COMBOS` knows.
    """
    if "protocols" in meta:
        named = [str(p) for p in meta["protocols"]]
    else:
        named = [n for part in str(meta.get("command", "")).split(";") for n in _flagged(part)]
    found = tuple(dict.fromkeys(p.split("@")[0] for p in named)) or tuple(default)
    unknown = [p for p in found if p not in COMBOS and p != EVERY]
    if unknown:
        raise ValueError(f"unknown protocols {unknown} (known: {sorted(COMBOS)})")
    return found


def _flagged(command: str) -> list[str]:
    """The values after any of :data:`PROTOCOL_FLAGS` in one shell command."""
    words = shlex.split(command)
    return [
        value
        for i, word in enumerate(words)
        if word in PROTOCOL_FLAGS
        for value in takewhile(lambda w: not w.startswith("-"), words[i + 1 :])
    ]


def evaluation_suites_seen(protocols: Sequence[str]) -> tuple[str, ...]:
    """The evaluation-only suites any of whose combinations the protocols hold by name.

    :data:`EVERY` (every combination alike, as perception is trained) names none.
    """
    fitted = {c for p in protocols if p != EVERY for c in COMBOS[p]}
    return tuple(s for s in EVALUATION_ONLY if fitted & set(COMBOS[s]))


def markdown_rows(paths: Sequence[Path]) -> list[str]:
    """docs/protocols.md's table: each record's piece, its protocols, what of evaluation it saw.

    Raises:
        KeyError: a path is not the record of a piece in :data:`PIECES`.
    """
    by_record = {(ROOT / p.record).resolve(): p for p in PIECES}
    lines = [
        "| piece | record | fitted on | evaluation-only combinations seen |",
        "|---|---|---|---|",
    ]
    for path in paths:
        piece = by_record[Path(path).resolve()]
        protocols = fitted_protocols(json.loads(Path(path).read_text()), piece.default)
        seen = evaluation_suites_seen(protocols)
        shown = ", ".join(f"`{s}`" for s in seen) if seen else "none"
        if EVERY in protocols:
            shown += " (and every combination alike, none by name)"
        named = " ".join(protocols)
        lines.append(f"| {piece.name} | `{piece.record}` | `{named}` | {shown} |")
    return lines


def main() -> None:
    """Print the table of every piece."""
    print("\n".join(markdown_rows([ROOT / p.record for p in PIECES])))


if __name__ == "__main__":
    main()
