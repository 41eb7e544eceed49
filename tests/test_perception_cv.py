"""Cross-validated perception (benchmarks.perception_cv) on the bundled photos, tiny settings."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from benchmarks import perception_cv

TINY = "--samples 96 --val-samples 48 --steps 8 --batch 32 --hidden 8 --members 1 --val val"


def test_every_photo_is_held_out_once_and_scored(tmp_path: Path) -> None:
    out = tmp_path / "cv.json"
    argv = ["--source", "train", "--folds", "2", "--jobs", "1", "--suites", "mio-b"]
    argv += ["--variant", f"base={TINY}", "--variant", f"profile={TINY} --profile"]
    argv += ["--variant", "paired=pair:profile,base", "--tune-fixed", "base"]
    perception_cv.main([*argv, "--out", str(tmp_path / "runs"), "--json", str(out)])
    results = json.loads(out.read_text())
    assert results["variants"] == ["base", "profile", "paired", "base+tuned"]
    assert len(results["folds"]) == 2
    # 6 bundled train photos in two folds, 4 mio-b pairs each
    assert sum(len(f["suites"]) for f in results["folds"]) == 6 * 4
    for name in results["variants"]:
        pooled = perception_cv.scores(results["folds"], name)
        assert 0.0 <= pooled["exact_set"] <= 1.0 and np.isfinite(pooled["fixed"])
    # the profile network reads 35 more features; the shared examples were made once
    record = json.loads((tmp_path / "runs" / "profile_f0" / "perception.json").read_text())
    assert record["architecture"]["profile"] is True
    # thresholds tuned for fixed on the photos the fold's network was trained on
    tuned = results["folds"][0]["base+tuned"]["thresholds"]
    assert all(v in perception_cv.THRESHOLD_GRID or 0 < v < 1 for v in tuned.values())
    lines = perception_cv.table(results)
    assert lines[0] == "| | base | profile | paired | base+tuned |"
    assert "all 24 episodes" in lines[-1]
    # the paired variant: profile's presence, base's network as tirqa; nothing trained for it
    paired, runs = perception_cv.fold_dir(tmp_path / "runs", "paired", 0), tmp_path / "runs"
    assert (paired / "perception.json").resolve() == (runs / "profile_f0" / "perception.json")
    assert (paired / "tirqa.json").resolve() == (runs / "base_f0" / "perception.json")
    assert not (paired / "examples").exists()
    paired_f0 = results["folds"][0]["paired"]
    assert paired_f0["perceived"] == results["folds"][0]["profile"]["perceived"]


def test_a_pair_of_untrained_variants_is_refused_by_name(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match="not trained on fold 0"):
        perception_cv.link_pair(tmp_path, tmp_path / "p_f0", "pair:a,b", 0)
    with pytest.raises(SystemExit, match="PRESENCE,QUALITY"):
        perception_cv.link_pair(tmp_path, tmp_path / "p_f0", "pair:a", 0)


def test_variants_are_name_equals_arguments() -> None:
    assert perception_cv.parse_variants(["a=", "b=--profile --steps 3"]) == {
        "a": "",
        "b": "--profile --steps 3",
    }
    with pytest.raises(SystemExit, match="NAME=ARGS"):
        perception_cv.parse_variants(["--profile"])


def test_agents_run_with_each_folds_network_and_fixed_matches_its_simulation(
    tmp_path: Path,
) -> None:
    out = tmp_path / "cv.json"
    argv = ["--source", "train", "--folds", "2", "--jobs", "1", "--suites", "mio-b"]
    # the simulation is fixed's classical plan of perception's call (FixedRunner); the shipped
    # fixed dehazes with the learned tool and lets its judge veto, so the classical plan
    # without the judge is what must match it
    argv += ["--variant", f"base={TINY}", "--agents", "fixed:learned=,guard=none"]
    perception_cv.main([*argv, "--out", str(tmp_path / "runs"), "--json", str(out)])
    results = json.loads(out.read_text())
    for fold in results["folds"]:
        # the real agent, perceiving with the fold's network, does what the simulation says
        run = fold["base"]["run"]["fixed:learned=,guard=none"]
        assert run == pytest.approx(fold["base"]["fixed"], abs=1e-4)
    assert perception_cv.agents_run(results["folds"], "base") == ["fixed:learned=,guard=none"]
    lines = perception_cv.table(results)
    assert lines[-1].startswith("| `fixed:learned=,guard=none` (run) PSNR, all 24 episodes |")


def test_agent_specs_carry_typed_options() -> None:
    assert perception_cv.agent_spec("greedy") == ("greedy", {})
    name, options = perception_cv.agent_spec("exhaustive:guard=none,prior_margin=5")
    assert name == "exhaustive" and options == {"guard": "none", "prior_margin": 5.0}
    from tir_env.errors import UnknownConfigFieldError

    with pytest.raises(UnknownConfigFieldError, match="nope"):
        perception_cv.agent_spec("exhaustive:nope=1")


def test_an_agent_spec_keeps_the_commas_of_a_list_value() -> None:
    spec = "fixed:learned=dehazing,defocus_deblurring,params=tuned"
    name, options = perception_cv.agent_spec(spec)
    assert name == "fixed"
    assert options == {"learned": ("dehazing", "defocus_deblurring"), "params": "tuned"}


def test_a_folds_own_quality_network_is_linked_and_a_shipped_one_never_stands_in(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tir_env.tools.learned import weights

    shipped = tmp_path / "shipped"
    shipped.mkdir()
    for name in ("perception.json", "tirqa.json", "learned_denoising.json"):
        (shipped / name).write_text("{}")
    monkeypatch.setattr(weights, "SHIPPED_DIR", shipped)
    for variant, own in (
        ("plain", ["perception.json"]),
        ("paired", ["perception.json", "tirqa.json"]),
    ):
        fold = perception_cv.fold_dir(tmp_path / "cv", variant, 0)
        fold.mkdir(parents=True)
        for name in own:
            (fold / name).write_text(variant)
    plain = perception_cv.weights_folder(tmp_path / "cv", "plain", 0)
    assert (plain / "perception.json").read_text() == "plain"
    assert not (plain / "tirqa.json").exists()  # tirqa reads the fold's perception network
    assert (plain / "learned_denoising.json").resolve() == shipped / "learned_denoising.json"
    paired = perception_cv.weights_folder(tmp_path / "cv", "paired", 0)
    assert (paired / "tirqa.json").read_text() == "paired"


def test_result_files_of_the_same_episodes_merge_side_by_side(tmp_path: Path) -> None:
    def result(variant: str, truth: list[list[bool]], command: str) -> dict:
        fold = {"fold": 0, "suites": ["mio-b"], "truth": truth, "input": [1.0], "oracle": [2.0]}
        fold[variant] = {"perceived": truth, "fixed": [1.5], "thresholds": {}, "run": {}}
        return {"command": command, "variants": [variant], "folds": [fold]}

    truth = [[True] + [False] * 7]
    a, b, c = (tmp_path / f"{n}.json" for n in "abc")
    a.write_text(json.dumps(result("base", truth, "cv a")))
    b.write_text(json.dumps(result("paired", truth, "cv b")))
    c.write_text(json.dumps(result("other", [[False] * 8], "cv c")))
    both = perception_cv.merged([a, b])
    assert both["variants"] == ["base", "paired"] and both["command"] == "cv a ; cv b"
    assert perception_cv.table(both)[0] == "| | base | paired |"
    with pytest.raises(ValueError, match="do not merge"):
        perception_cv.merged([a, c])


def test_agents_of_several_result_files_share_one_table_with_paired_differences(
    tmp_path: Path,
) -> None:
    def result(runs: dict[str, list[float]], truth: list[list[bool]]) -> dict:
        fold = {"fold": 0, "suites": ["mio-a", "mio-b"], "truth": truth}
        fold["p40kq"] = {"perceived": truth, "fixed": [20.0, 22.0], "run": runs}
        return {"command": "cv", "variants": ["p40kq"], "folds": [fold]}

    truth = [[True] + [False] * 7] * 2
    a, b, c = (tmp_path / f"{n}.json" for n in "abc")
    a.write_text(json.dumps(result({"exhaustive": [21.0, 22.0]}, truth)))
    b.write_text(json.dumps(result({"greedy": [19.0, 21.0], "exhaustive": [0.0, 0.0]}, truth)))
    c.write_text(json.dumps(result({}, [[False] * 8] * 2)))
    rows = perception_cv.agents_table([a, b])
    assert rows[0] == "| agent | mio-a | mio-b | all 2 | minus `fixed` (se) |"
    assert rows[2] == "| `fixed` | 20.00 | 22.00 | 21.00 | - |"
    assert rows[3] == "| `exhaustive` | 21.00 | 22.00 | 21.50 | +0.500 (0.500) |"  # a's run
    assert rows[4] == "| `greedy` | 19.00 | 21.00 | 20.00 | -1.000 (0.000) |"
    with pytest.raises(ValueError, match="other folds"):
        perception_cv.agents_table([a, c])


def test_out_of_fold_thresholds_never_lower_fixed_on_the_episodes_they_were_tuned_on(
    tmp_path: Path,
) -> None:
    argv = ["--source", "train", "--folds", "2", "--jobs", "1", "--suites", "mio-b"]
    argv += ["--out", str(tmp_path / "runs")]
    perception_cv.main([*argv, "--variant", f"base={TINY}", "--json", str(tmp_path / "cv.json")])
    out = tmp_path / "thresholds.json"
    perception_cv.main([*argv, "--oof-thresholds", "base", "--json", str(out)])
    result = json.loads(out.read_text())
    assert result["episodes"] == 6 * 4 and "--oof-thresholds base" in result["command"]
    assert set(result["tuned"]) == set(result["start"])  # every type, from the shipped ones
    from tir_env import perception

    shipped = perception.record()  # a rerun starts from F-beta, not from what it raised
    assert result["start"] == shipped.get("f_beta_thresholds", shipped["thresholds"])
    assert all(result["tuned"][t] >= v for t, v in result["start"].items())  # only raised
    assert result["fixed"]["tuned"] >= result["fixed"]["start"] - 1e-9
    assert result["fixed"]["final"] >= result["fixed"]["start"] - 1e-9 or not result["alone"]
    assert all(
        result["final"][t] in (result["start"][t], result["tuned"][t]) for t in result["start"]
    )
    # thresholds may fall once clean crops price the false alarms, from the shipped ones
    lowered = tmp_path / "lowered.json"
    perception_cv.main(
        [*argv, "--oof-thresholds", "base", "--clean", "2", "--lower", "--json", str(lowered)]
    )
    result = json.loads(lowered.read_text())
    assert result["episodes"] == 6 * 4 + 6 * 2 and result["lower"]
    assert result["start"] == shipped["thresholds"]
    assert result["by_kind"]["clean"]["episodes"] == 12
    assert result["by_kind"]["clean"]["start"] <= perception_cv.CLEAN_PSNR_CAP
    assert result["fixed"]["tuned"] >= result["fixed"]["start"] - 1e-9


def test_lowering_thresholds_without_clean_crops_is_refused() -> None:
    with pytest.raises(SystemExit):
        perception_cv.main(["--oof-thresholds", "base", "--lower"])


def test_a_clean_crop_scores_the_cap_left_alone_and_less_when_a_tool_runs() -> None:
    episodes = perception_cv.clean_episodes("train", 1)[:1]
    runner = perception_cv.FixedRunner(episodes, "train")
    nothing = (False,) * len(runner.types)
    haze = tuple(t == "haze" for t in runner.types)
    assert runner.truth(0) == nothing
    assert runner.psnr(0, nothing) == perception_cv.CLEAN_PSNR_CAP
    assert runner.psnr(0, haze) < perception_cv.CLEAN_PSNR_CAP  # dehazing a clear crop
    assert runner.clean_crop(episodes[0][1]).shape == (128, 128, 3)
