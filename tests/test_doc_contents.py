"""The generated contents of the long docs pages: GitHub's anchors, and never stale."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.doc_contents import (
    CONTENTS_BLOCK,
    anchor,
    contents,
    headings,
    with_contents,
    with_contents_before_first_section,
)

DOCS = Path(__file__).resolve().parents[1] / "docs"


@pytest.mark.parametrize(
    ("title", "expected"),
    [
        ("PPO", "ppo"),
        ("Seeing with perception v2 (`--perceived`)", "seeing-with-perception-v2---perceived"),
        ("A prior against the winner's curse", "a-prior-against-the-winners-curse"),
        ("`learned=tone_dehaze`, 50%: a [link](x.md)", "learnedtone_dehaze-50-a-link"),
        ("Größe und Schärfe", "größe-und-schärfe"),
    ],
)
def test_anchor_follows_github(title: str, expected: str) -> None:
    assert anchor(title) == expected


def test_repeated_headings_are_numbered_and_fences_skipped() -> None:
    text = "# Page\n\n## Pieces\n\n```bash\n## not a heading\n```\n\n## Other\n\n### Pieces\n"
    assert [h[2] for h in headings(text)] == ["page", "pieces", "other", "pieces-1"]


def test_block_is_filled_and_regeneration_is_stable() -> None:
    text = "# Page\n\nIntro.\n\n<!-- contents -->\nold\n<!-- /contents -->\n\n## A\n\n### B\n"
    filled = with_contents(text)
    assert "- [A](#a)\n  - [B](#b)\n" in filled
    assert "old" not in filled
    assert with_contents(filled) == filled


def test_a_page_without_a_block_is_left_alone() -> None:
    assert with_contents("# Page\n\n## A\n") == "# Page\n\n## A\n"


def test_block_goes_before_the_first_section() -> None:
    out = with_contents_before_first_section("# Page\n\nIntro.\n\n## A\n")
    assert out.index("<!-- contents -->") < out.index("## A")
    assert out.index("Intro.") < out.index("<!-- contents -->")
    assert with_contents_before_first_section(out) == out


@pytest.mark.parametrize("page", ["agents.md", "perception.md"])
def test_committed_contents_match_the_headings(page: str) -> None:
    text = (DOCS / page).read_text()
    match = CONTENTS_BLOCK.search(text)
    assert match is not None, f"docs/{page} has no contents block"
    assert match.group("body") == contents(text), (
        f"docs/{page}'s contents are stale: run python -m benchmarks.gen_docs "
        "(agents.md) or python -m benchmarks.perception_report --doc-only (perception.md)"
    )
