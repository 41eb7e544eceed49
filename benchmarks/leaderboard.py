"""The leaderboard: a pure function of episode JSONL files.

``tir leaderboard DIR`` reads every ``*.jsonl`` under DIR and writes, per suite, a Markdown
and a CSV table (mean of every metric before and after, tool executions and wall time per
image, per agent), a quality-vs-tool-executions plot and a per-suite bar chart.
"""

from __future__ import annotations

import csv
import io
import math
import statistics
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks.evaluate import read_jsonl
from tir_env.errors import NoRecordsError
from tir_env.files import atomic_path, write_text_atomic

Row = dict[str, Any]
#: Optional per-episode cost fields (API agents) averaged into the tables when present.
COST_FIELDS = ("prompt_tokens", "completion_tokens", "requests", "api_latency_s")
NON_METRIC = ("agent", "n", "version", "tool_executions", "tool_calls", "wall_time_s", *COST_FIELDS)


def load_records(root: Path) -> list[dict[str, Any]]:
    """Every record of every ``*.jsonl`` file under ``root`` (sorted by path)."""
    return [r for path in sorted(root.rglob("*.jsonl")) for r in read_jsonl(path)]


def _mean(values: Sequence[Any]) -> float:
    finite = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    return statistics.fmean(finite) if finite else math.nan


def table_key(record: dict[str, Any], versions: dict[str, set[str]]) -> str:
    """The table a record belongs to: its suite, plus ``vN`` when versions of it coexist.

    Records of two versions of a suite were made from different inputs; averaging them in
    one row would compare nothing.
    """
    suite = str(record["suite"])
    if len(versions.get(suite, ())) > 1:
        return f"{suite} v{record.get('suite_version', '')}"
    return suite


def records_by_table(records: Sequence[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """The records of each table (:func:`table_key`), in their order."""
    versions: dict[str, set[str]] = defaultdict(set)
    for r in records:
        versions[str(r["suite"])].add(str(r.get("suite_version", "")))
    tables: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in records:
        tables[table_key(r, versions)].append(r)
    return dict(tables)


def table_section(name: str, records: Sequence[dict[str, Any]], rows: Sequence[Row]) -> str:
    """One table's Markdown section: title, its setting and conventions, the table."""
    return f"## {name}\n\n{setting_note(records, rows)}\n\n{markdown_table(rows)}\n"


def leaderboard_rows(records: Sequence[dict[str, Any]]) -> dict[str, list[Row]]:
    """Suite -> one row per agent: n, every metric in/out, tool executions, wall time."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for table, rs in records_by_table(records).items():
        for r in rs:
            groups[(table, r["agent"])].append(r)
    tables: dict[str, list[Row]] = defaultdict(list)
    for (suite, agent), rs in sorted(groups.items()):
        metrics = sorted({m for r in rs for m in r["metrics_output"]})
        row: Row = {"agent": agent, "n": len(rs), "version": rs[0].get("suite_version", "")}
        for m in metrics:
            row[f"{m}_in"] = _mean([r["metrics_input"].get(m) for r in rs])
            row[m] = _mean([r["metrics_output"].get(m) for r in rs])
        row["tool_executions"] = _mean([r["tool_executions"] for r in rs])
        row["tool_calls"] = _mean([sum(1 for a in r["actions"] if a) for r in rs])
        row["wall_time_s"] = _mean([r["wall_time_s"] for r in rs])
        for key in COST_FIELDS:  # API agents: tokens, requests and latency per image
            if any(key in r for r in rs):
                row[key] = _mean([r.get(key) for r in rs])
        tables[suite].append(row)
    for rows in tables.values():
        rows.sort(
            key=lambda row: (
                -row.get("psnr", -math.inf)
                if math.isfinite(row.get("psnr", math.nan))
                else math.inf
            )
        )
    return dict(tables)


def markdown_table(rows: Sequence[Row]) -> str:
    """A Markdown table of leaderboard rows (metrics shown as out, with the input value once)."""
    metrics = [k for k in rows[0] if k not in NON_METRIC and not k.endswith("_in")]
    costs = [k for k in COST_FIELDS if any(k in row for row in rows)]
    head = ["agent", "n", *metrics, "tool executions", "tool calls", "wall s / image", *costs]
    lines = ["| " + " | ".join(head) + " |", "|---|---:|" + "---:|" * (len(head) - 2)]
    inputs = ["*input*", str(rows[0]["n"]), *(_fmt(rows[0].get(f"{m}_in")) for m in metrics)]
    inputs += ["0", "0", "0", *("-" for _ in costs)]
    lines.append("| " + " | ".join(inputs) + " |")
    for row in rows:
        cells = [row["agent"], str(row["n"]), *(_fmt(row.get(m)) for m in metrics)]
        cells += [
            _fmt(row["tool_executions"], 1),
            _fmt(row["tool_calls"], 1),
            _fmt(row["wall_time_s"], 2),
            *(_fmt(row.get(k), 1) for k in costs),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def setting_note(records: Sequence[dict[str, Any]], rows: Sequence[Row]) -> str:
    """How a table's inputs were made and what each metric column means (its convention).

    Made from the records and the metric registry, so a table never misstates its protocol.
    """
    from tir_env.metrics import metric_info

    def values(key: str) -> str:
        found = sorted({_describe(key, r.get(key, "?")) for r in records})
        return " / ".join(found) or "?"

    setting = (
        f"Suite version {values('suite_version')}; inputs: {values('patch_size')}, "
        f"degradations applied in {values('degradation_order')} order."
    )
    metrics = [k for k in rows[0] if k not in NON_METRIC and not k.endswith("_in")]
    texts = {m: _metric_text(m, metric_info, records) for m in metrics}
    columns = "; ".join(f"`{m}`: {text}" for m, text in texts.items())
    return f"{setting} Columns: {columns}."


#: What a fitted metric's model was fit on (the image source it records), in words.
FIT_WORDS = {
    "train": "the bundled train photos",
    "corpus:train@3": "the corpus' train photos (releases 1-3)",
}
#: The fit of records made before they stated one (no ``<name>_fit``): NIQE's bundled fit.
UNSTAMPED_FIT = {"niqe": "train"}


def fitted_text(name: str, label: str, records: Sequence[dict[str, Any]]) -> str:
    """A fitted metric's column: ``label``, and which photos the records' model was fit on."""
    fits = sorted({str(r.get(f"{name}_fit", UNSTAMPED_FIT.get(name, "?"))) for r in records})
    return f"{label}, model fit on " + " / ".join(FIT_WORDS.get(f, f"`{f}`") for f in fits)


def _describe(key: str, value: Any) -> str:
    if key == "patch_size":
        if value == "?":
            return "crops (size not recorded)"
        return "whole photos" if value is None else f"{value} px crops"
    if key == "degradation_order" and value == "?":
        return "physical (records before version 2 do not say)"
    return str(value)


def _metric_text(name: str, metric_info: Any, records: Sequence[dict[str, Any]]) -> str:
    """A column's meaning: the metric's description, or for a fitted one what it was fit on."""
    from tir_env.errors import UnknownNameError

    try:
        info = metric_info(name)
    except UnknownNameError:  # a metric this install does not know: still print the table
        return "not a registered metric here"
    if info.fit is None:
        return str(info.description)
    # the records' fit, not this install's: the description's first clause names the metric
    return fitted_text(name, str(info.description).split(",")[0], records)


def _header(root: Path, command: str, records: Sequence[dict[str, Any]]) -> str:
    """Title and provenance: the command, each record file's command, or the record files."""
    if command:
        return f"# Leaderboard\n\nMade by `{command}`.\n"
    commands = list(dict.fromkeys(r.get("command") for r in records))
    if records and None not in commands:
        runs = "\n".join(str(c) for c in commands)
        return (
            f"# Leaderboard\n\nMade by `tir leaderboard {root}` over the records of:\n\n"
            f"```bash\n{runs}\n```\n"
        )
    files = sorted(root.rglob("*.jsonl"))
    return (
        f"# Leaderboard\n\nMade by `tir leaderboard {root}` from the {len(files)} record files "
        f"there; each `SUITE__AGENT.jsonl` is written by "
        f"`tir bench SUITE --agents AGENT --out {root}`.\n"
    )


def write_leaderboard(root: Path, out: Path | None = None, command: str = "") -> list[Path]:
    """Write per-suite Markdown/CSV tables and plots for the records under ``root``.

    Every file is written atomically (temp + rename).

    Raises:
        NoRecordsError: ``root`` is missing or holds no records (nothing is written then).
    """
    out = out or root
    if not root.is_dir():
        raise NoRecordsError(
            f"results folder not found: {root}; give the --out folder of a `tir bench` run"
        )
    records = load_records(root)
    if not records:
        raise NoRecordsError(
            f"no benchmark records (*.jsonl) under {root}; write some with "
            f"`tir bench SUITE --out {root}`"
        )
    tables = leaderboard_rows(records)
    grouped = records_by_table(records)
    written: list[Path] = []
    sections = [_header(root, command, records)]
    for suite, rows in tables.items():
        text = io.StringIO()
        writer = csv.DictWriter(text, fieldnames=list(rows[0]), lineterminator="\r\n")
        writer.writeheader()
        writer.writerows(rows)
        written.append(write_text_atomic(out / f"{suite}.csv", text.getvalue()))
        sections.append(table_section(suite, grouped[suite], rows))
    written.append(write_text_atomic(out / "leaderboard.md", "\n".join(sections)))
    if tables:
        written += plot_leaderboard(tables, out)
    return written


def refresh_tables(record_files: Sequence[Path]) -> list[Path]:
    """Rewrite the tables of every folder among ``record_files`` that keeps them.

    A folder keeps tables when it holds a ``leaderboard.md`` (``tir bench --out`` writes one);
    whatever rewrites a record file there (``benchmarks.reproduce --remake``,
    ``benchmarks.rescore``) calls this, or its CSVs and Markdown go on showing the old
    records. Returns the folders rewritten.
    """
    folders = sorted({path.parent for path in record_files})
    kept = [folder for folder in folders if (folder / "leaderboard.md").exists()]
    for folder in kept:
        write_leaderboard(folder)
    return kept


def plot_leaderboard(tables: dict[str, list[Row]], out: Path) -> list[Path]:
    """Quality vs tool executions (one point per agent and suite) and per-suite PSNR bars."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 4))
    agents = sorted({row["agent"] for rows in tables.values() for row in rows})
    markers = "osD^v<>pP*X"
    for i, agent in enumerate(agents):
        pts = [
            (row["tool_executions"], row.get("psnr", math.nan))
            for rows in tables.values()
            for row in rows
            if row["agent"] == agent
        ]
        colour = agent_colour(i, len(agents))
        ax.scatter(
            *zip(*pts, strict=True), label=agent, marker=markers[i % len(markers)], color=colour
        )
    # log spacing from 0.1 executions up (the default threshold, 1, bends 1-10); 0 still shows
    ax.set_xscale("symlog", linthresh=0.1, linscale=0.3)
    ax.set_xlabel("tool executions per image")
    ax.set_ylabel("PSNR (dB)")
    # Outside the axes: inside, the legend hides points (and, below, the tallest bars).
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.set_title("Quality vs cost (one point per suite)")
    fig.tight_layout()
    scatter = out / "quality_vs_executions.png"
    with atomic_path(scatter) as tmp:
        fig.savefig(tmp, dpi=120)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(max(6, 1.2 * len(tables)) + 1.5, 4))
    width = 0.8 / max(1, len(agents))
    for i, agent in enumerate(agents):
        ys = [
            next((r.get("psnr", math.nan) for r in rows if r["agent"] == agent), math.nan)
            for rows in tables.values()
        ]
        xs = [j + i * width for j in range(len(tables))]
        ax.bar(xs, ys, width, label=agent, color=agent_colour(i, len(agents)))
    ax.set_xticks([j + 0.4 - width / 2 for j in range(len(tables))], list(tables))
    for j, rows in enumerate(tables.values()):  # the input's PSNR: where "no change" is
        ax.hlines(
            rows[0].get("psnr_in", math.nan),
            j - width / 2,
            j + 0.8 - width / 2,
            colors="black",
            linestyles="dashed",
            label="input" if j == 0 else "_nolegend_",
        )
    ax.set_ylabel("PSNR (dB)")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    values = [
        r.get(k, math.nan) for rows in tables.values() for r in rows for k in ("psnr", "psnr_in")
    ]
    finite = [v for v in values if math.isfinite(v)]
    if finite:  # every bar, the worst agent's too, must stand above the axis
        ax.set_ylim(bottom=max(0.0, min(finite) - 2))
    fig.tight_layout()
    bars = out / "psnr_by_suite.png"
    with atomic_path(bars) as tmp:
        fig.savefig(tmp, dpi=120)
    plt.close(fig)
    return [scatter, bars]


def agent_colour(index: int, count: int) -> tuple[float, ...]:
    """The plots' colour of the ``index``-th of ``count`` agents: all distinct up to 20.

    matplotlib's default cycle has 10 colours, so an 11th agent repeated the first's.
    """
    import matplotlib.pyplot as plt

    cmap = plt.get_cmap("tab10" if count <= 10 else "tab20")
    return tuple(cmap(index % cmap.N))


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)
