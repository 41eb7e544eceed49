"""Generated doc tables: per-combination means and multi-seed learning curves."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from benchmarks import ppo_curve
from benchmarks.gen_docs import combinations_table, with_combination_tables


def _record(agent: str, combo: list[str], before: float, after: float) -> dict:
    return {
        "agent": agent,
        "degradations": combo,
        "metrics_input": {"psnr": before},
        "metrics_output": {"psnr": after},
    }


def test_combination_table_means_each_agent_per_combination(tmp_path: Path) -> None:
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    rows_a = [
        _record("ppo", ["noise", "jpeg"], 20.0, 24.0),
        _record("ppo", ["noise", "jpeg"], 22.0, 26.0),
        _record("ppo", ["haze"], 10.0, 15.0),
    ]
    rows_b = [_record("oracle", ["haze"], 10.0, 18.0), _record("oracle", ["noise", "jpeg"], 21, 27)]
    a.write_text("".join(json.dumps(r) + "\n" for r in rows_a))
    b.write_text("".join(json.dumps(r) + "\n" for r in rows_b))
    table = combinations_table([str(a), str(b)]).splitlines()
    assert table[0] == "| combination | n | input | ppo | oracle |"
    assert table[2] == "| noise + jpeg | 2 | 21.00 | 25.00 | 27.00 |"
    assert table[3] == "| haze | 1 | 10.00 | 15.00 | 18.00 |"
    page = f"x\n<!-- combinations: {a} {b} -->\nstale\n<!-- /combinations -->\ny"
    filled = with_combination_tables(page)
    assert "stale" not in filled and "| haze | 1 | 10.00 | 15.00 | 18.00 |" in filled


def _fake_run(folder: Path, gains: list[float]) -> None:
    (folder / "logs").mkdir(parents=True)
    with (folder / "logs" / "progress_0.csv").open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(
            ["time/total_timesteps", "rollout/ep_psnr_gain_mean", "rollout/ep_len_mean"]
        )
        for i, gain in enumerate(gains):
            writer.writerow([512 * (i + 1), gain, 3.0])


def test_learning_curves_of_several_seeds(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    pytest.importorskip("matplotlib")
    _fake_run(tmp_path / "s0", [-1.0, 0.0, 1.0, 2.0, 2.5, 3.0])
    _fake_run(tmp_path / "s1", [-2.0, -1.0, 0.5, 1.0, 1.5, 2.0])
    stem = tmp_path / "curve"
    assert (
        ppo_curve.main([str(tmp_path / "s0"), str(tmp_path / "s1"), "--out", str(stem), "--table"])
        == 0
    )
    with stem.with_suffix(".csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert [r["run"] for r in rows] == ["s0"] * 6 + ["s1"] * 6
    assert stem.with_suffix(".png").stat().st_size > 0
    printed = capsys.readouterr().out
    assert "| s0: PSNR gain (dB) | -1.00 |" in printed and "+2.00 |" in printed
    from benchmarks.gen_docs import with_curve_tables

    page = f"<!-- curve: {stem.with_suffix('.csv')} -->\nold\n<!-- /curve -->\n"
    assert with_curve_tables(page) == page.replace("old\n", printed.rstrip("\n") + "\n")


def test_a_run_without_logs_is_a_usage_error(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(SystemExit):
        ppo_curve.main([str(tmp_path / "empty"), "--out", str(tmp_path / "x")])


def test_runs_table_puts_seeds_side_by_side(tmp_path: Path) -> None:
    from benchmarks.gen_docs import runs_table

    for seed, after in (("s0", 22.0), ("s1", 24.0)):
        folder = tmp_path / seed
        folder.mkdir()
        rows = [{**_record("ppo", ["haze"], 20.0, after), "actions": [{"tool": "x"}, None]}]
        (folder / "mio-a__ppo.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    table = runs_table("ppo", [str(tmp_path / "s0"), str(tmp_path / "s1")]).splitlines()
    assert table[0] == "| suite | input | s0 | s1 | mean |"
    assert table[2] == "| mio-a | 20.00 | 22.00 / 1.0 | 24.00 / 1.0 | 23.00 |"


def test_sft_table_rows_come_from_the_summaries(tmp_path: Path) -> None:
    from benchmarks.gen_docs import with_sft_tables

    summary = {
        "config": {
            "steps": 800,
            "lr": 0.001,
            "detail": "none",
            "full_modules": ["language_model"],
            "show_size": False,
            "perception_hint": True,
        },
        "train_trajectories": 1390,
        "val_loss_before": 7.5871,
        "val_loss_after": 0.18226,
        "task_choice": {"correct": 34, "n": 128, "accuracy": 34 / 128, "chosen": {"dehazing": 3}},
    }
    path = tmp_path / "hint.json"
    path.write_text(json.dumps(summary))
    page = f"a\n<!-- sft: {path} -->\nstale\n<!-- /sft -->\nb"
    filled = with_sft_tables(page)
    row = (
        "| `hint` | 800 | 0.001 | none | language_model | perception | 1390 | 7.59 -> 0.182 "
        "| 34/128 = 26.6% | dehazing 3 |"
    )
    assert "stale" not in filled and row in filled
    assert filled.startswith("a\n<!-- sft:") and filled.endswith("<!-- /sft -->\nb")


def test_line_probe_table_rows_come_from_the_results(tmp_path: Path) -> None:
    from benchmarks.gen_docs import with_probe_tables

    result = {"system": "none", "steps": 800, "lr": 0.001, "seed": 0, "accuracy": 0.953125}
    result |= {"n": 64, "loss_last_50": 0.0196, "seconds": 80.1}
    path = tmp_path / "probe.json"
    path.write_text(json.dumps(result))
    filled = with_probe_tables(f"<!-- line-probe: {path} -->\nstale\n<!-- /line-probe -->")
    row = "| `probe` | none | 800 | 0.001 | 0 | 61/64 = 95.3% | 0.020 | 80.1 |"
    assert "stale" not in filled and row in filled


def test_hacking_block_is_the_summary_of_its_episodes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from benchmarks import gen_docs

    def episode(reward: str, seed: int, picks: list[str], psnr: float) -> dict:
        metrics = {"psnr": 20.0, "ssim": 0.5, "niqe": 10.0}
        return {
            "reward": reward,
            "seed": seed,
            "picks": picks,
            "input": metrics,
            "output": {**metrics, "psnr": psnr},
        }

    rows = [
        episode("static", 0, ["median_paint"], 19.0),
        episode("static", 1, ["tv_denoise"], 23.0),
        episode("adaptive", 0, ["tv_denoise"], 24.0),
    ]
    (tmp_path / "h.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    monkeypatch.setattr(gen_docs, "ROOT", tmp_path)
    text = "before\n<!-- hacking: h.jsonl -->\nstale\n<!-- /hacking -->\nafter"
    out = gen_docs.with_hacking_tables(text)
    assert "stale" not in out and out.startswith("before\n") and out.endswith("after")
    assert "| static | 2 | 50% | 50% | 1.00 | 20.00 -> 21.00 (seed std 2.00) |" in out
    assert "| adaptive | 1 | 0% |" in out
