"""A generated table of contents for the long docs pages.

docs/agents.md and docs/perception.md run to thousands of lines: a reader looking for how to
train the PPO agent or what a threshold means should not have to scroll through every
experiment. A page that holds a ``<!-- contents -->`` block gets it filled with a nested list
of its ``##`` and ``###`` headings, linked by the anchors GitHub gives them;
:func:`benchmarks.gen_docs.main` and ``benchmarks.perception_report --doc-only`` regenerate it
with the rest of the page, and a test fails when a committed block is stale.
"""

from __future__ import annotations

import re
import unicodedata

#: The block the contents fill (the markers stay, so regeneration finds it again).
CONTENTS_BLOCK = re.compile(r"(<!-- contents -->\n)(?P<body>.*?)(<!-- /contents -->)", re.S)
#: An empty block, inserted where a page should have one.
EMPTY_BLOCK = "<!-- contents -->\n<!-- /contents -->"
#: Heading levels listed (``##`` and ``###``; deeper ones would double the list).
LEVELS = (2, 3)
_HEADING = re.compile(r"^(?P<hashes>#{1,6})\s+(?P<title>.+?)\s*#*\s*$")
_FENCE = re.compile(r"^\s*(```|~~~)")


def anchor(title: str) -> str:
    """The anchor GitHub gives a heading, before any ``-N`` suffix for a repeated one.

    Lower case; markup and punctuation dropped (letters, digits, ``_``, ``-`` and spaces
    stay); each space becomes ``-``.
    """
    text = re.sub(r"`([^`]*)`", r"\1", title)
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)  # a link keeps its text
    kept = "".join(
        c for c in text.lower() if c in "_- " or unicodedata.category(c)[0] in ("L", "N")
    )
    return kept.replace(" ", "-")


def headings(text: str) -> list[tuple[int, str, str]]:
    """Every heading outside code fences: its level, title and unique anchor, in order.

    A repeated anchor gets ``-1``, ``-2``, ... as GitHub numbers them.
    """
    seen: dict[str, int] = {}
    out: list[tuple[int, str, str]] = []
    fenced = False
    for line in text.splitlines():
        if _FENCE.match(line):
            fenced = not fenced
            continue
        match = None if fenced else _HEADING.match(line)
        if match is None:
            continue
        title = match.group("title")
        base = anchor(title)
        count = seen.get(base, 0)
        seen[base] = count + 1
        out.append((len(match.group("hashes")), title, base if count == 0 else f"{base}-{count}"))
    return out


def contents(text: str) -> str:
    """The nested list of ``text``'s :data:`LEVELS` headings, each a link to its anchor."""
    lines = ["**Contents**", ""]
    top = min(LEVELS)
    for level, title, slug in headings(CONTENTS_BLOCK.sub(r"\1\3", text)):
        if level in LEVELS:
            lines.append(f"{'  ' * (level - top)}- [{title}](#{slug})")
    return "\n".join(lines) + "\n"


def with_contents(text: str) -> str:
    """``text`` with its ``<!-- contents -->`` block (if any) filled from its headings."""
    if CONTENTS_BLOCK.search(text) is None:
        return text
    listing = contents(text)
    return CONTENTS_BLOCK.sub(lambda m: f"{m.group(1)}{listing}{m.group(3)}", text, count=1)


def with_contents_before_first_section(text: str) -> str:
    """``text`` with a contents block before its first ``##`` heading, filled.

    For a page generated whole (docs/perception.md): the block is placed, then filled; a page
    that already has one keeps its place.
    """
    if CONTENTS_BLOCK.search(text) is None:
        match = re.search(r"^## ", text, re.M)
        if match is None:
            return text
        text = f"{text[: match.start()]}{EMPTY_BLOCK}\n\n{text[match.start() :]}"
    return with_contents(text)
