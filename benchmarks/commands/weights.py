"""``tir weights list | fetch | verify``: the published checkpoints of the manifest."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from benchmarks.commands.configs import WeightsConfig

if TYPE_CHECKING:
    from tir_env.weights_manifest import Manifest, WeightEntry


def cmd_weights(config: WeightsConfig) -> int:
    """``tir weights list | fetch | verify``: the published checkpoints of the manifest."""
    from tir_env import downloads
    from tir_env.errors import TIRError
    from tir_env.weights_manifest import load_manifest

    try:
        manifest = load_manifest(config.manifest)
        root = downloads.weights_root(config.weights_dir)
        if config.action == "list":
            print(_weights_table(manifest, root))
            return 0
        if config.action == "verify":
            found = downloads.verify(config.names, manifest=manifest, root=root)
            for r in found:
                print(f"{r.entry.name:22s} {r.status:8s} {r.detail}")
            print(f"{root}: {sum(r.status in ('ok', 'pinned') for r in found)}/{len(found)} ok")
            return 0 if all(r.status in ("ok", "pinned") for r in found) else 1
        entries = (
            downloads.toolbox_entries(config.toolbox, manifest)
            if config.toolbox
            else manifest.select(config.names)
        )
    except TIRError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return _fetch_entries(entries, root, config)


def _weights_table(manifest: Manifest, root: Path) -> str:
    """Every manifest file and every AgenticIR slot, with size, licence and whether present."""
    from tir_env.tools.base import tool_names
    from tir_env.tools.presets import AGENTICIR_TOOLBOX

    entries = {e.name: e for e in manifest.entries}
    slots = {n: task for task, names in AGENTICIR_TOOLBOX.items() for n in names}
    builtin = set(tool_names(kinds=("classical",)))
    rows = ["name | for | size | licence | NC | sha256 | here", "---|---|---|---|---|---|---"]
    for name in [*slots, *(n for n in entries if n not in slots)]:
        e = entries.get(name)
        if e is None:
            what = "built in (classical)" if name in builtin else "no downloadable checkpoint"
            rows.append(f"{name} | {slots[name]} | - | - | - | - | {what}")
            continue
        here = "yes" if e.path(root).is_file() else ("no" if e.direct else "no (manual)")
        use = e.task if e.kind == "tool" else "metric " + ",".join(e.metrics)
        nc = "yes" if e.noncommercial else "no"
        rows.append(f"{e.name} | {use} | {e.size} | {e.licence} | {nc} | {e.hash_kind} | {here}")
    return "\n".join(rows) + f"\nweights folder: {root}"


def _fetch_entries(entries: Sequence[WeightEntry], root: Path, config: WeightsConfig) -> int:
    """Print each licence, refuse unaccepted non-commercial ones, then fetch one by one."""
    from tir_env import downloads
    from tir_env.errors import TIRError

    fetch = downloads.FetchConfig(
        base_url=config.base_url,
        offline=config.offline,
        accept_noncommercial=config.accept_noncommercial,
        timeout=config.timeout,
        deadline=config.deadline,
        retries=config.retries,
        progress=config.progress,
    )
    for e in entries:
        nc = ", NON-COMMERCIAL" if e.noncommercial else ""
        print(f"{e.name}: {e.file} ({e.size}), licence: {e.licence}{nc}")
    failed = 0
    for e in entries:
        try:
            r = downloads.fetch_entry(e, root, fetch)
        except TIRError as err:
            print(f"error: {err}", file=sys.stderr)
            failed += 1
            continue
        pin = " (no full published hash: pinned now)" if r.pinned else ""
        print(f"{r.entry.name}: {r.status} {r.path} sha256 {r.sha256}{pin}")
    print(f"{len(entries) - failed}/{len(entries)} files in place under {root}")
    return 1 if failed else 0
