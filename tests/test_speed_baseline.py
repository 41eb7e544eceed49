"""The paired benchmark against the issue's baseline (its bookkeeping; no timing is checked)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from benchmarks import speed_baseline as sb

# A source tree without git (an unpacked archive) cannot check a revision out.
needs_git = pytest.mark.skipif(
    shutil.which("git") is None or not (sb.ROOT / ".git").exists(), reason="not a git checkout"
)


def test_arms_time_the_same_sub_steps_on_each_side() -> None:
    plan = sb.arms(["full", "classical"], sub_steps=768, warmup=192, n_base=4, n_cur=16)
    assert [a["name"] for a in plan] == ["baseline", "full", "classical"]
    assert "vector_env_sps(4, steps=192, repeats=1)" in plan[0]["code"]  # 768 / 4, timed
    assert "vector_env_sps(4, steps=48, repeats=1)" in plan[0]["code"]  # 192 / 4, warm-up
    assert "vector_env_rates(16, steps=48, repeats=1, toolbox='full')" in plan[1]["code"]
    assert "vector_env_rates(16, steps=12, repeats=1, toolbox='classical')" in plan[2]["code"]


def test_rounds_rotate_the_order_of_the_arms(monkeypatch: pytest.MonkeyPatch) -> None:
    order: list[str] = []

    def fake(checkout: Path, code: str) -> float:
        name = "baseline" if "vector_env_sps" in code else code.split("toolbox=")[-1][1:5]
        order.append(name)
        return 10.0 if name == "baseline" else 30.0

    monkeypatch.setattr(sb, "run_arm", fake)
    plan = sb.arms(["full", "classical"], 64, 16, 4, 16)
    rounds = sb.measure(Path("."), plan, rounds=3)
    assert order[:3] == ["baseline", "full", "clas"]
    assert order[3:6] == ["full", "clas", "baseline"]
    assert order[6:] == ["clas", "baseline", "full"]
    assert rounds[0] == {"baseline": 10.0, "full": 30.0, "classical": 30.0}


def _report() -> dict[str, Any]:
    return {
        "command": "OMP_NUM_THREADS=1 python -m benchmarks.speed_baseline",
        "baseline_rev": sb.BASELINE_REV,
        "baseline_envs": 4,
        "envs": 16,
        "toolboxes": ["full"],
        "sub_steps": 768,
        "warmup_sub_steps": 192,
        "machine": {"cpu": "test cpu", "date": "today"},
        "rounds": [
            {"baseline": 40.0, "full": 120.0},  # 3.0x
            {"baseline": 50.0, "full": 100.0},  # 2.0x, the host slowed the other arm
            {"baseline": 60.0, "full": 240.0},  # 4.0x
        ],
        "cpu_steal": 0.004,
    }


def test_the_ratio_is_taken_within_each_round() -> None:
    found = sb.summary(_report())
    assert found["full"]["ratio"] == 3.0  # median of 3.0, 2.0, 4.0
    assert (found["full"]["ratio_low"], found["full"]["ratio_high"]) == (2.0, 4.0)
    assert found["full"]["rate"] == 120.0 and found["baseline"]["rate"] == 50.0
    assert found["full"]["vs_issue_figure"] == pytest.approx(120.0 / sb.ISSUE_FIGURE)


def test_table_is_a_marked_section_with_the_command() -> None:
    text = sb.table(_report())
    assert text.startswith(sb.START) and text.endswith(sb.END)
    assert sb.COMMAND in text and "**3.00x** (2.00-4.00)" in text and "0.4%" in text


def test_main_doc_only_rewrites_the_section_from_the_json(tmp_path: Path) -> None:
    import json

    out_json, out_md = tmp_path / "sb.json", tmp_path / "performance.md"
    out_json.write_text(json.dumps(_report()))
    out_md.write_text("# Performance\n\nkept\n")
    sb.main(["--doc-only", "--out-json", str(out_json), "--out-md", str(out_md)])
    text = out_md.read_text()
    assert text.startswith("# Performance\n\nkept\n") and sb.START in text


def test_a_folder_that_is_not_a_checkout_is_a_named_error(tmp_path: Path) -> None:
    checkout = sb.baseline_checkout(sb.BASELINE_REV, str(tmp_path))
    with pytest.raises(sb.BaselineUnavailableError, match="not a TIR checkout"), checkout:
        pass


@needs_git
def test_a_revision_git_cannot_find_is_a_named_error() -> None:
    checkout = sb.baseline_checkout("0" * 40)
    with pytest.raises(sb.BaselineUnavailableError, match="--baseline-dir"), checkout:
        pass


def test_an_arm_reads_its_rate_and_reports_a_failure() -> None:
    assert sb.run_arm(sb.ROOT, "print('warming up'); print(2.5)") == 2.5
    with pytest.raises(RuntimeError, match="ZeroDivisionError"):
        sb.run_arm(sb.ROOT, "1 / 0")


@needs_git
def test_the_worktree_is_removed_even_when_the_run_fails() -> None:
    def worktrees() -> str:
        return sb._git("worktree", "list").stdout

    with pytest.raises(KeyboardInterrupt), sb.baseline_checkout("HEAD") as checkout:
        assert (checkout / "tir_env").is_dir() and str(checkout) in worktrees()
        raise KeyboardInterrupt
    assert str(checkout) not in worktrees() and not checkout.exists()


def test_an_arm_refuses_modules_from_outside_its_checkout(tmp_path: Path) -> None:
    """A checkout without the package must not time the installed copy in its place."""
    with pytest.raises(RuntimeError, match="AssertionError|ModuleNotFoundError"):
        sb.run_arm(tmp_path, sb._GUARD + "print(1.0)")
    with pytest.raises(RuntimeError, match="printed no rate"):
        sb.run_arm(sb.ROOT, "print('done')")


@needs_git
def test_the_report_names_the_commit_it_measured() -> None:
    found = sb.revision(sb.ROOT)
    assert found["commit"] is not None and len(found["commit"]) == 40
    assert found["changed"] in (True, False)
