"""The learned judge of darkness and haze (agents.judge) and its training."""

from __future__ import annotations

import contextlib
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import example, given, settings
from hypothesis import strategies as st

from agents import judge
from agents.base import make_agent
from benchmarks import train_judge
from tir_env import streaks
from tir_env.env import TIREnv
from tir_env.errors import (
    CheckpointError,
    ConfigValueError,
    InvalidParameterError,
    WeightsNotFoundError,
)
from tir_env.tools.base import tool_info

torch.set_num_threads(1)
WIDTH = judge.FEATURE_SIZE
#: What perception saw of the judged types, and the judge's rulings on them (None: abstains).
SEEN_TYPES = st.lists(st.sampled_from(judge.JUDGED), unique=True)
RULINGS = st.dictionaries(
    st.sampled_from(judge.JUDGED), st.one_of(st.none(), st.booleans()), max_size=2
)


def _constant(bias: float) -> dict[str, judge.TypeModel]:
    """A judge that predicts ``bias`` for every type, whatever it reads."""
    flat = judge.TypeModel(np.zeros(WIDTH), np.ones(WIDTH), np.zeros(WIDTH), bias)
    return {t: flat for t in judge.JUDGED}


def test_the_ridge_fit_recovers_a_linear_gain() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, WIDTH))
    gain = 3.0 * x[:, 0] - 2.0 * x[:, 5] + 1.0
    model = judge.fit(x, gain, lam=1e-6)
    assert model.gain(x[0]) == pytest.approx(gain[0], abs=1e-3)
    assert judge.fit(x, gain, lam=1e9).gain(x[0]) == pytest.approx(gain.mean(), abs=1e-3)


def test_weights_round_trip_and_bad_files_are_named_errors(tmp_path: Path) -> None:
    path = tmp_path / "judge.json"
    with pytest.raises(WeightsNotFoundError, match="train_judge"):
        judge.load(path)
    judge.save(path, _constant(1.5), {"lambda": 10.0})
    loaded = judge.load(path)
    assert loaded["dark"].gain(np.zeros(WIDTH)) == 1.5
    raw = json.loads(path.read_text())
    raw["types"]["haze"]["weights"] = [0.0] * 3  # the wrong width
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(raw))
    with pytest.raises(CheckpointError, match="haze"):
        judge.load(bad)
    raw["features"] = "readings-v1"  # the first judge's file: another feature set
    bad.write_text(json.dumps(raw))
    with pytest.raises(CheckpointError, match="readings-v1"):
        judge.load(bad)


def test_a_weights_file_carries_its_floor(tmp_path: Path) -> None:
    path = tmp_path / "judge.json"
    judge.save(path, _constant(1.0), {"floor": 0.5})
    assert judge.load_floor(path) == 0.5
    assert judge.load_floor(judge.WEIGHTS_FILE) == judge.FLOOR  # the shipped judge: the default
    for floor in ["0.5", 0.0, 1.5, True]:
        with pytest.raises(CheckpointError, match="floor"):
            judge.load_floor(_rewritten(path, "floor", floor))


def _rewritten(path: Path, key: str, value: object) -> Path:
    """A copy of the weights file at ``path`` with ``key`` set to ``value``."""
    raw = json.loads(path.read_text())
    raw[key] = value
    out = path.with_name(f"bad_{key}_{value}.json")
    out.write_text(json.dumps(raw))
    return out


def test_a_higher_floor_probes_less() -> None:
    env = _dark_env()
    _, probed, _ = judge.probes(env, "tuned")
    ratio = max(p.ratio for p in probed)
    _, none, executions = judge.probes(env, "tuned", floor=ratio + 0.01)
    assert {p.type for p in none} < {p.type for p in probed} and executions >= 0


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 2**32 - 1), st.sampled_from([1, 8, 33]))
def test_image_cues_are_finite_shares_and_levels(seed: int, side: int) -> None:
    image = torch.rand(1, 3, side, side, generator=torch.Generator().manual_seed(seed))
    cues = judge.image_cues(image)
    assert cues.shape == (judge.CUE_SIZE,) and np.isfinite(cues).all()
    assert ((cues >= 0) & (cues <= 1)).all()


def test_the_texture_cues_read_noise_and_leave_a_smooth_ramp_quiet() -> None:
    ramp = torch.linspace(0.2, 0.8, 64).expand(1, 3, 64, 64).contiguous()
    noisy = (
        ramp + 0.1 * torch.randn(1, 1, 64, 64, generator=torch.Generator().manual_seed(0))
    ).clamp(0, 1)
    quiet, loud = judge.image_cues(ramp)[10:], judge.image_cues(noisy)[10:]
    assert quiet[0] == pytest.approx(0.0, abs=1e-4) and loud[0] == pytest.approx(0.1 * 0.9, rel=0.2)
    assert loud[1] > 5 * quiet[1]  # the gradient: noise's steps dwarf the ramp's


def test_a_judge_of_the_older_feature_set_reads_its_own_columns(tmp_path: Path) -> None:
    # judges fitted before the texture cues (cues-v2) read the first ten cues of each block
    rng = np.random.default_rng(0)
    n = judge.CUE_SETS["cues-v2"]
    old = judge.TypeModel(
        rng.normal(size=3 * n + 1), np.ones(3 * n + 1), rng.normal(size=3 * n + 1), 0.5
    )
    path = tmp_path / "v2.json"
    path.write_text(json.dumps({"features": "cues-v2", "types": {"dark": {
        "mean": old.mean.tolist(), "scale": old.scale.tolist(), "weights": old.weights.tolist(),
        "bias": old.bias}}}))  # fmt: skip
    loaded = judge.load(path)["dark"]
    before, with_t, without_t = (rng.random(judge.CUE_SIZE) for _ in range(3))
    x = judge.features(before, with_t, without_t, 0.7)
    v2 = np.concatenate([before[:n], (with_t - without_t)[:n], with_t[:n], [0.7]])
    assert loaded.gain(x) == pytest.approx(old.gain(v2)) and loaded.reach(x) == pytest.approx(
        old.reach(v2)
    )
    judge.save(tmp_path / "again.json", {"dark": loaded}, {})
    assert json.loads((tmp_path / "again.json").read_text())["features"] == "cues-v2"
    for shipped in (judge.WEIGHTS_FILE, judge.WHOLE_WEIGHTS_FILE):
        assert all(np.isfinite(m.gain(x)) for m in judge.load(shipped).values())


def test_image_cues_see_burnt_out_and_black_pixels() -> None:
    white, black = torch.ones(1, 3, 16, 16), torch.zeros(1, 3, 16, 16)
    assert judge.image_cues(white)[[0, 8]].tolist() == [1.0, 1.0]  # burnt out, white
    assert judge.image_cues(black)[[1, 2]].tolist() == [1.0, 0.0]  # black, dark


@settings(max_examples=20, deadline=None)
@given(st.binary(max_size=200))
@example(b"[]")  # valid JSON, not an object
@example(b'{"features": "cues-v2", "types": []}')
def test_a_corrupt_weights_file_is_a_checkpoint_error(tmp_path_factory, data: bytes) -> None:
    path = tmp_path_factory.mktemp("judge") / "judge.json"
    path.write_bytes(data)
    with pytest.raises(CheckpointError):
        judge.load(path)
    for read, valid in (
        (judge.load_margin, lambda m: m >= 0),
        (judge.load_floor, lambda f: 0 < f <= 1),
    ):
        # an object without the key gives the default; anything else a named error
        with contextlib.suppress(CheckpointError):
            assert valid(read(path))


def _dark_env() -> TIREnv:
    env = TIREnv(combos="mio-a", max_steps=5, patch_size=64)
    env.reset(seed=1, options={"degradations": ("dark", "noise")})  # darkness read: 0.77
    return env


def test_the_judge_puts_darkness_in_or_out_as_its_model_predicts() -> None:
    env = _dark_env()
    present, probed, executions = judge.probes(env, "tuned")
    assert "dark" in {p.type for p in probed} and executions >= 1
    assert all(p.x.shape == (WIDTH,) for p in probed)
    kept, _ = judge.judged_types(env, "tuned", _constant(+1.0))
    dropped, _ = judge.judged_types(env, "tuned", _constant(-1.0))
    assert "dark" in kept and "dark" not in dropped
    assert set(kept) - set(judge.JUDGED) == set(present) - set(judge.JUDGED)  # others untouched


def test_a_search_agent_with_the_judge_counts_its_probes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(judge, "load", lambda path=judge.WEIGHTS_FILE: _constant(-1.0))
    env = _dark_env()
    agent = make_agent("exhaustive")  # the judge is on by default
    agent.reset(env, {})
    assert "brightening" not in agent.info["perceived_tasks"]
    _, _, probes = judge.probes(env, "tuned")
    assert agent.tool_executions >= probes


def _rows(k: int, helps: bool) -> list[dict]:
    # one feature says whether planning the type gains: the judge must learn to follow it
    rng = np.random.default_rng(k)
    rows = []
    for i in range(40):
        x = rng.normal(size=WIDTH)
        gain = 4.0 if (x[0] > 0) == helps else -4.0
        rows.append({"fold": k, "type": "dark", "x": x.tolist(), "gain": gain, "seen": True,
                     "true": gain > 0, "ratio": 1.0, "episode": i})  # fmt: skip
    return rows


def test_cross_validation_scores_decisions_on_folds_the_model_never_saw(tmp_path: Path) -> None:
    rows = [r for k in range(4) for r in _rows(k, helps=True)]
    cv = train_judge.cross_validate(rows, [40] * 4, lam=1.0)
    # fixed plans every row (seen): the judge drops the half that loses 4 dB
    losing = sum(r["gain"] < 0 for r in rows)
    assert cv["ceiling"] == pytest.approx(4.0 * losing / 160)  # every losing row dropped
    assert cv["judge"] > 0.5 * cv["ceiling"]  # a random choice: about 0
    # a relation that flips on the held-out fold cannot be learned from the others
    flipped = [r for k in range(3) for r in _rows(k, True)] + _rows(3, helps=False)
    assert (
        train_judge.cross_validate(flipped, [40] * 4, lam=1.0)["by_type"]["dark"]["judge"]
        < (cv["by_type"]["dark"]["judge"])
    )
    nested = train_judge.nested_cross_validate(rows, [40] * 4, [1.0, 1e6])
    assert all(f["lambda"] == 1.0 for f in nested["per_fold"])  # 1e6 learns nothing
    assert nested["per_episode"] == pytest.approx(cv["judge"])
    report = {"lambda": 1.0, "episodes": 160, "cross_validation": [cv], "nested": nested}
    path = tmp_path / "train.json"
    path.write_text(json.dumps(report))
    lines = train_judge.markdown_table([path])
    assert lines[2].startswith("| 1 (chosen) |") and "Ceiling" in lines[-1]
    assert any(line.startswith("Nested (lambda chosen without") for line in lines)


def test_a_row_weight_is_a_repeated_row() -> None:
    rng = np.random.default_rng(1)
    x, gain = rng.normal(size=(30, WIDTH)), rng.normal(size=30)
    weight = rng.integers(1, 4, size=30)
    weighted = judge.fit(x, gain, 3.0, weight)
    repeated = judge.fit(np.repeat(x, weight, axis=0), np.repeat(gain, weight), 3.0)
    probe = rng.normal(size=WIDTH)
    assert weighted.gain(probe) == pytest.approx(repeated.gain(probe))
    assert judge.fit(x, gain, 3.0, np.ones(30)).gain(probe) == pytest.approx(
        judge.fit(x, gain, 3.0).gain(probe)
    )


def test_cross_validation_reports_what_the_judge_did_on_clean_rows() -> None:
    rows = [r for k in range(4) for r in _rows(k, helps=True)]
    for r in rows[::10]:
        r["clean"], r["true"] = True, False
    cv = train_judge.cross_validate(rows, [40] * 4, lam=1.0, clean_weight=5.0)
    clean = cv["clean"]
    assert clean["probes"] == len(rows[::10]) and 0 <= clean["judged_in"] <= clean["probes"]
    assert "clean" not in train_judge.cross_validate(_rows(0, True) + _rows(1, True), [40] * 2, 1.0)


def test_a_whole_photo_suite_plays_each_clean_photo_whole_once() -> None:
    from benchmarks.perception_cv import FixedRunner, clean_episodes

    episodes = clean_episodes("test[0/4]", 3, "mio-a@full")
    assert len(episodes) == 1  # one photo in the fold, one whole view of it
    runner = FixedRunner(episodes, "test[0/4]")
    env = runner.reset(0)
    assert env.input_image().shape == env.clean_image().shape
    assert max(env.input_image().shape[:2]) > judge.MAX_SIDE and runner.truth(0) == (False,) * 8


def test_rows_of_the_shipped_network_hold_each_probe_and_its_gain() -> None:
    from benchmarks.ab_test import round_episodes
    from benchmarks.perception_cv import FixedRunner

    episodes = [
        e for e in round_episodes("test[0/4]", ["mio-a"], 0, 1) if "dark" in e[1].degradations
    ]
    rows, n = train_judge._rows(3, FixedRunner(episodes[:2], "test[0/4]"), judge.JUDGED)
    assert n == 2 and rows and all(r["fold"] == 3 and len(r["x"]) == WIDTH for r in rows)
    assert all(np.isfinite(r["gain"]) and r["type"] in judge.JUDGED for r in rows)
    assert all(0 <= r["others"] <= 7 for r in rows)  # the other types perception saw


def test_a_judge_fitted_on_training_protocols_reads_only_their_episodes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import benchmarks.perception_cv as cv

    seen: list[str] = []

    class Runner:  # records what would be played, plays nothing
        def __init__(self, episodes: list, images: str, learned: tuple = ()) -> None:
            seen.extend(suite.name for suite, _ in episodes)

    monkeypatch.setattr(cv, "FixedRunner", Runner)
    monkeypatch.setattr(train_judge, "_rows", lambda k, runner, types, floor: ([], 0))
    train_judge._shipped_fold("test", 0, 4, 1, judge.JUDGED, 0.3, protocols=("train-d3",))
    assert seen and set(seen) == {"train-d3"}
    seen.clear()
    train_judge._shipped_fold("test", 0, 4, 1, judge.JUDGED, 0.3)  # as the shipped judge
    assert set(seen) == set(cv.SUITES)


def _whole_env(degradations: tuple[str, ...] = ("dark", "noise")) -> TIREnv:
    env = TIREnv(combos="mio-a", max_steps=5, patch_size=None)
    env.reset(seed=1, options={"degradations": degradations})
    return env


def test_a_whole_photo_is_judged_on_its_proxy_by_the_whole_photo_judge(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    named = tmp_path / "whole.json"
    judge.save(named, _constant(-1.0), {})
    env = _whole_env()
    assert judge.is_whole(env) and max(env.target_size()) > judge.MAX_SIDE
    _, probed, executions = judge.probes(env, "tuned")
    assert "dark" in {p.type for p in probed} and executions >= 1
    for p in probed:
        assert max(p.with_type.shape[-2:]) == judge.PROXY_SIDE  # the proxy, not the photo
    asked: list[Path] = []

    def fake_load(path: Path = judge.WEIGHTS_FILE) -> dict[str, judge.TypeModel]:
        asked.append(path)
        return _constant(-1.0)

    monkeypatch.setattr(judge, "load", fake_load)
    types, _ = judge.judged_types(env, "tuned")
    assert asked == [judge.WHOLE_WEIGHTS_FILE] and "dark" not in types
    judge.judged_types(_dark_env(), "tuned")
    assert asked[-1] == judge.WEIGHTS_FILE  # a crop keeps the crop judge
    judge.judged_types(env, "tuned", whole_weights=named)
    assert asked[-1] == named  # the whole-photo judge a user named
    judge.judged_types(_dark_env(), "tuned", whole_weights=named)
    assert asked[-1] == judge.WEIGHTS_FILE  # which a crop does not read


def test_a_type_read_only_at_a_whole_photos_lower_threshold_unlocks_no_addition() -> None:
    from tir_env import perception

    record = perception.thresholds()
    whole = record | {"noise": perception.WHOLE_NOISE_THRESHOLD}
    probs = dict.fromkeys(perception.AGENTICIR_TYPES, 0.0)
    weak = perception.Perception(
        probs=probs | {"noise": 0.6, "jpeg": 0.95}, severity=probs, psnr=20.0, ssim=0.5,
        thresholds=whole,
    )  # fmt: skip
    assert weak.present == ["noise", "jpeg"]
    assert judge.read_at_record(weak, weak.present) == ["jpeg"]  # noise under the record's
    strong = perception.Perception(
        probs=probs | {"noise": 0.95}, severity=probs, psnr=20.0, ssim=0.5, thresholds=whole
    )
    assert judge.read_at_record(strong, strong.present) == ["noise"]


def test_a_photo_planned_on_its_crop_is_judged_on_a_proxy_of_the_whole_photo() -> None:
    # tir restore plans a large photo on its centre crop and gives the env the photo: the
    # judge's plans run on the photo's proxy (a dark crop of a bright frame reads bright).
    photo = np.full((600, 1500, 3), 230, dtype=np.uint8)
    crop = np.full((300, 300, 3), 20, dtype=np.uint8)
    env = TIREnv(reward="adaptive", max_steps=3, patch_size=None)
    env.reset(seed=0, options={"image": crop, "photo": photo})
    assert judge.is_whole(env)
    image = judge.judged_image(env)
    assert max(image.shape[-2:]) == judge.PROXY_SIDE
    assert image.shape[-1] / image.shape[-2] == pytest.approx(1500 / 600, rel=0.05)
    assert float(image.mean()) == pytest.approx(230 / 255, abs=1e-3)
    env.reset(seed=0, options={"image": crop})  # no photo: the input is the frame
    image = judge.judged_image(env)
    assert max(image.shape[-2:]) == judge.PROXY_SIDE
    assert float(image.mean()) == pytest.approx(20 / 255, abs=1e-3)


@pytest.mark.parametrize(("shape", "restored"), [((300, 900), 900), ((64, 96), 384)])
def test_a_proxy_restores_to_the_proxy_side(shape: tuple[int, int], restored: int) -> None:
    small = judge.proxy(torch.rand(1, 3, *shape), restored)
    scale = restored / max(shape)  # 4 for a low-resolution input
    assert round(max(small.shape[-2:]) * scale) == judge.PROXY_SIDE
    assert small.shape[-2] / small.shape[-1] == pytest.approx(shape[0] / shape[1], rel=0.05)


def test_whole_photo_rows_score_the_proxies_against_the_clean_photo_downscaled() -> None:
    from benchmarks.ab_test import round_episodes
    from benchmarks.perception_cv import FixedRunner

    episodes = [
        e for e in round_episodes("test[0/4]", ["mio-a@full"], 0, 1) if "dark" in e[1].degradations
    ]
    rows, n = train_judge._rows(0, FixedRunner(episodes[:1], "test[0/4]"), judge.JUDGED)
    assert n == 1 and rows and all(np.isfinite(r["gain"]) for r in rows)
    dark = next(r for r in rows if r["type"] == "dark")
    assert dark["true"] and dark["gain"] > 0  # brightening a darkened photo gains


def test_judge_false_keeps_perceptions_types(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(judge, "load", lambda path=judge.WEIGHTS_FILE: _constant(-1.0))
    env = _dark_env()
    agent = make_agent("exhaustive", judge=False)
    agent.reset(env, {})
    assert "brightening" in agent.info["perceived_tasks"]  # perceived, not judged away


def test_judge_whole_false_keeps_perceptions_types_on_whole_photos_only(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from agents.baselines import perceived_tasks

    monkeypatch.setattr(judge, "load", lambda path=judge.WEIGHTS_FILE: _constant(+1.0))
    env = _whole_env()
    assert "brightening" not in perceived_tasks(env)  # darkness read under its threshold
    agent = make_agent("exhaustive", judge_whole=False)
    agent.reset(env, {})
    assert agent.info["perceived_tasks"] == perceived_tasks(env)
    agent = make_agent("exhaustive")
    agent.reset(env, {})
    assert "brightening" in agent.info["perceived_tasks"]  # judged in on the proxy


def test_the_clean_study_cross_validates_each_weight_and_renders(tmp_path: Path) -> None:
    from benchmarks import judge_clean_study

    rows = [r for k in range(4) for r in _rows(k, helps=True)]
    for r in rows[::10]:
        r["clean"], r["true"] = True, False
    grid = judge_clean_study.study(rows, [40] * 4, [1.0, 10.0], [1.0])
    assert [(g["clean_weight"], g["lambda"]) for g in grid] == [(1.0, 1.0), (10.0, 1.0)]
    path = tmp_path / "study.json"
    path.write_text(json.dumps({"episodes": 160, "clean_photos_probed": 16, "grid": grid}))
    lines = judge_clean_study.markdown_table([path])
    assert lines[2].startswith("| 1 | 1 |") and lines[3].startswith("| 10 | 1 |")


def test_the_strip_shows_the_episode_where_b_gains_most_over_a() -> None:
    from benchmarks.whole_judge_strip import largest_gap

    def rec(psnr: float) -> dict:
        return {"metrics_output": {"psnr": psnr}}

    assert largest_gap([rec(20), rec(20), rec(25)], [rec(21), rec(26), rec(24)]) == 1


def test_a_margin_lets_the_judge_overrule_perception_only_when_sure() -> None:
    env = _dark_env()
    present, probed, _ = judge.probes(env, "tuned")
    assert "dark" in present and "dark" in {p.type for p in probed}  # perceived, and probed
    # a predicted loss of 1 dB drops a perceived darkness without a margin, not with 2 dB
    assert "dark" not in judge.judged_types(env, "tuned", _constant(-1.0))[0]
    assert "dark" in judge.judged_types(env, "tuned", _constant(-1.0), margin=2.0)[0]
    assert "dark" not in judge.judged_types(env, "tuned", _constant(-3.0), margin=2.0)[0]


def test_a_margin_needs_a_clearer_gain_to_add_a_type_perception_missed() -> None:
    env = _whole_env()  # darkness read under its threshold, probed on the proxy
    models = _constant(+1.0)
    assert "dark" in judge.judged_types(env, "tuned", models)[0]
    assert "dark" not in judge.judged_types(env, "tuned", models, margin=2.0)[0]


def _far(bias: float, sd: float) -> dict[str, judge.TypeModel]:
    """A judge predicting ``bias`` whose fitted rows lie within a tiny ``sd`` of zero."""
    tight = judge.TypeModel(np.zeros(WIDTH), np.full(WIDTH, sd), np.zeros(WIDTH), bias)
    return {t: tight for t in judge.JUDGED}


def test_the_judge_abstains_beyond_its_reach_and_perception_decides() -> None:
    env = _dark_env()
    present, probed, _ = judge.probes(env, "tuned")
    assert "dark" in present
    reach = max(_far(-1.0, 1e-3)["dark"].reach(p.x) for p in probed)
    assert reach > judge.RANGE_Z  # these features are far outside rows fitted at sd 1e-3
    # near its rows the judge drops the darkness; beyond its reach perception's call stands
    assert "dark" not in judge.judged_types(env, "tuned", _far(-1.0, 1e-3), reach=math.inf)[0]
    assert "dark" in judge.judged_types(env, "tuned", _far(-1.0, 1e-3))[0]
    assert "dark" not in judge.judged_types(env, "tuned", _far(-1.0, 1e-3), reach=reach)[0]
    # an unseen type beyond its reach is not added either
    whole = _whole_env()
    assert "dark" not in judge.judged_types(whole, "tuned", _far(+5.0, 1e-3))[0]
    assert "dark" in judge.judged_types(whole, "tuned", _far(+5.0, 1e-3), reach=math.inf)[0]


@pytest.mark.parametrize("bad", [0.0, -1.0, float("nan")])
def test_a_bad_judge_reach_is_a_named_error(bad: float) -> None:
    from agents.search import SearchOptions
    from tir_env.errors import InvalidParameterError

    with pytest.raises(InvalidParameterError, match="judge_reach"):
        SearchOptions(judge_reach=bad)
    assert SearchOptions(judge_reach=math.inf).judge_reach == math.inf


@pytest.mark.parametrize("bad", [-1.0, float("nan"), float("inf")])
def test_a_bad_judge_margin_is_a_named_error(bad: float) -> None:
    from agents.search import SearchOptions
    from tir_env.errors import InvalidParameterError

    with pytest.raises(InvalidParameterError, match="judge_margin"):
        SearchOptions(judge_margin=bad)


def test_a_weights_file_carries_its_margin(tmp_path: Path) -> None:
    path = tmp_path / "judge.json"
    judge.save(path, _constant(1.0), {"margin": 2.0})
    assert judge.load_margin(path) == 2.0
    judge.save(tmp_path / "none.json", _constant(1.0), {})
    assert judge.load_margin(tmp_path / "none.json") == 0.0  # older files: no margin
    for margin in ["2", -1.0, float("inf"), True]:
        with pytest.raises(CheckpointError, match="margin"):
            judge.load_margin(_rewritten(path, "margin", margin))


def test_the_shipped_judge_decides_with_the_margin_its_weights_carry(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    env = _dark_env()  # darkness perceived
    path = tmp_path / "judge.json"
    judge.save(path, _constant(-1.0), {"margin": 2.0})
    monkeypatch.setattr(judge, "WEIGHTS_FILE", path)
    assert "dark" in judge.judged_types(env, "tuned")[0]  # -1 dB does not clear the file's 2
    assert "dark" not in judge.judged_types(env, "tuned", margin=0.0)[0]  # an explicit margin


def test_cross_validated_margins_trade_overruled_calls_for_fewer_large_losses(
    tmp_path: Path,
) -> None:
    rows = [r for k in range(4) for r in _rows(k, helps=True)]
    at = {m: train_judge.cross_validate(rows, [40] * 4, 1.0, margin=m) for m in (0.0, 1.0, 1e6)}
    assert at[0.0]["overruled"] >= at[1.0]["overruled"] >= at[1e6]["overruled"] == 0
    assert at[1e6]["judge"] == 0.0 and at[1e6]["large_losses"] == 0  # never overrules: fixed
    assert at[0.0]["judge"] == train_judge.cross_validate(rows, [40] * 4, 1.0)["judge"]
    report = {"lambda": 1.0, "margin": 0.0, "episodes": 160, "cross_validation": [at[0.0]],
              "margins": list(at.values())}  # fmt: skip
    path = tmp_path / "train.json"
    path.write_text(json.dumps(report))
    lines = train_judge.markdown_table([path])
    assert "| 0 (chosen) |" in "\n".join(lines) and lines[-1].startswith("| 1e+06 |")
    alone = train_judge.margins_markdown([path])  # the gen_docs block: the margins table alone
    assert alone[0].startswith("Margins at lambda 1") and alone[-3:] == lines[-3:]


def test_train_judge_refuses_a_negative_margin() -> None:
    with pytest.raises(SystemExit):
        train_judge.main(["--margins", "-1"])


def _probe(t: str, beside: bool = True) -> judge.Probe:
    image = torch.zeros(1, 3, 8, 8)
    return judge.Probe(t, 0.5, np.zeros(WIDTH), image, image, beside)


@pytest.mark.parametrize(
    ("present", "expected"),
    [([], []), (["noise"], ["noise", "dark"]), (["dark"], ["dark"])],
)
def test_alone_false_never_adds_a_type_to_a_photo_read_as_clean(
    monkeypatch: pytest.MonkeyPatch, present: list[str], expected: list[str]
) -> None:
    stub = lambda *a, **k: (present, [_probe("dark", beside=bool(present))], 2)  # noqa: E731
    monkeypatch.setattr(judge, "probes", stub)
    env = _dark_env()
    order = [t for t in judge_types_order() if t in expected]
    assert judge.judged_types(env, "tuned", _constant(+1.0), alone=False)[0] == order
    # alone (the default) the judge adds darkness whatever else perception saw
    assert "dark" in judge.judged_types(env, "tuned", _constant(+1.0))[0]


def judge_types_order() -> tuple[str, ...]:
    from tir_env import perception

    return perception.AGENTICIR_TYPES


def test_judge_whole_alone_false_guards_whole_photos_only(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[bool] = []
    reaches: list[float] = []

    def judge_rulings(
        env,
        params,
        models=None,
        floor=None,
        margin=None,
        alone=True,
        reach=0.0,
        crop_weights=None,
        whole_weights=None,
        types=None,
        adds=True,
        adds_need_kept=False,
        adds_blocked_by=(),
        blocked_adds=judge.JUDGED,
    ):
        seen.append(alone)
        reaches.append(reach)
        return [], {}, 0

    monkeypatch.setattr(judge, "judge_rulings", judge_rulings)
    make_agent("exhaustive", judge_whole_alone=False).reset(_whole_env(), {})
    make_agent("exhaustive", judge_whole_alone=False).reset(_dark_env(), {})  # a crop
    make_agent("exhaustive").reset(_whole_env(), {})  # off by default
    make_agent("exhaustive", judge_reach=math.inf, judge_whole_alone=True).reset(_whole_env(), {})
    assert seen == [False, True, False, True]
    assert reaches == [judge.RANGE_Z] * 3 + [math.inf]  # the agent passes its bound on


def test_cross_validation_without_alone_never_adds_where_perception_saw_nothing_else() -> None:
    rows = [r for k in range(4) for r in _rows(k, helps=True)]
    for r in rows:  # perception saw nothing: every gain would come from adding the type
        r["seen"], r["others"] = False, 0
    free = train_judge.cross_validate(rows, [40] * 4, 1.0)
    guarded = train_judge.cross_validate(rows, [40] * 4, 1.0, alone=False)
    assert free["judge"] > 0 and guarded["judge"] == 0.0 and guarded["overruled"] == 0
    for r in rows:
        r["others"] = 1  # something else seen: the guard does not apply
    assert train_judge.cross_validate(rows, [40] * 4, 1.0, alone=False)["judge"] == free["judge"]


@pytest.mark.parametrize("weight", [[0.0, 0.0, 0.0], [1.0, -1.0, 1.0], [1.0, float("nan"), 1.0]])
def test_a_fit_with_nothing_to_fit_on_is_an_error_not_a_nan_judge(weight: list[float]) -> None:
    x, gain = np.eye(3, WIDTH), np.array([1.0, -1.0, 2.0])
    with pytest.raises(ValueError, match="weights"):
        judge.fit(x, gain, 1.0, np.array(weight))


def test_cross_validation_skips_a_type_whose_training_rows_all_weigh_zero() -> None:
    rows = [r for k in range(4) for r in _rows(k, helps=True)]
    for r in rows:
        r["clean"] = True  # every row a clean view, fitted with weight 0: nothing to learn from
    cv = train_judge.cross_validate(rows, [40] * 4, 1.0, clean_weight=0.0)
    assert cv["judge"] == 0.0 and cv["clean"]["judged_in"] == len(rows)  # perception's calls


def test_the_guard_refuses_rows_that_do_not_say_what_else_perception_saw() -> None:
    rows = [r for k in range(4) for r in _rows(k, helps=True)]
    with pytest.raises(ValueError, match="others"):
        train_judge.cross_validate(rows, [40] * 4, 1.0, alone=False)


def test_a_huge_integer_margin_is_a_checkpoint_error(tmp_path: Path) -> None:
    path = tmp_path / "judge.json"
    path.write_text('{"margin": 1' + "0" * 400 + "}")
    with pytest.raises(CheckpointError, match="margin"):
        judge.load_margin(path)


def test_judge_range_abstains_or_clips_beyond_the_bound() -> None:
    from benchmarks import judge_range

    model = judge.TypeModel(np.zeros(WIDTH), np.ones(WIDTH), np.ones(WIDTH), 0.5)
    near, far = np.full(WIDTH, 0.1), np.r_[np.zeros(WIDTH - 1), 20.0]
    assert judge_range.predict(model, near, "abstain", 8.0) == pytest.approx(model.gain(near))
    assert judge_range.predict(model, near, "clip", 8.0) == pytest.approx(model.gain(near))
    assert judge_range.predict(model, far, "abstain", 8.0) is None
    assert judge_range.predict(model, far, "clip", 8.0) == pytest.approx(8.5)  # 8 + bias


def test_judge_range_scores_calls_against_perceptions() -> None:
    from benchmarks import judge_range

    model = judge.TypeModel(np.zeros(WIDTH), np.ones(WIDTH), np.ones(WIDTH) / WIDTH, 0.0)
    models = {"dark": model, "haze": model}
    rows = [  # the model predicts the mean feature: +1, -1, and +1 out of reach
        {"type": "dark", "x": [1.0] * WIDTH, "seen": False, "gain": 4.0},
        {"type": "haze", "x": [-1.0] * WIDTH, "seen": True, "gain": -2.0},
        {"type": "dark", "x": [9.0] * WIDTH, "seen": False, "gain": -6.0, "clean": True},
    ]
    shipped = judge_range.decide(rows, models, "abstain", math.inf, 0.0)
    bounded = judge_range.decide(rows, models, "abstain", 8.0, 0.0)
    assert shipped.tolist() == [True, False, True] and bounded.tolist() == [True, False, False]
    out = judge_range.score(rows, shipped, episodes=3)
    assert out["per_episode"] == pytest.approx((4.0 + 2.0 - 6.0) / 3)
    assert out["overruled"] == 3 and out["large_losses"] == 1 and out["clean_false_alarms"] == 1
    assert judge_range.score(rows, bounded, episodes=3)["per_episode"] == pytest.approx(2.0)


def test_judge_trees_calls_keep_perception_beyond_reach() -> None:
    from benchmarks import judge_trees

    a = judge_trees.arrays(
        [
            {"type": "dark", "x": [0.0] * WIDTH, "seen": False, "gain": 1.0},
            {"type": "dark", "x": [50.0] * WIDTH, "seen": True, "gain": 1.0},
        ]
    )
    reach = {"dark": judge.TypeModel(np.zeros(WIDTH), np.ones(WIDTH), np.zeros(WIDTH), 0.0)}
    never = {"dark": lambda x: np.full(len(x), -1.0)}
    assert judge_trees.calls(never, reach, a).tolist() == [False, True]
    assert judge_trees.over_perception(a, np.array([True, True]), 2) == pytest.approx(0.5)


def test_judge_confirm_scores_a_weights_file_and_names_a_missing_type(tmp_path: Path) -> None:
    from benchmarks import judge_confirm

    path = tmp_path / "judge.json"
    judge.save(path, _constant(+1.0), {"margin": 0.0})
    rows = [{"type": "dark", "x": [0.0] * WIDTH, "seen": False, "gain": 3.0}]
    out = judge_confirm.judged(rows, 2, path)
    assert out["per_episode"] == pytest.approx(1.5) and out["overruled"] == 1
    with pytest.raises(ValueError, match="no model for"):
        judge_confirm.judged([{**rows[0], "type": "rain"}], 1, path)


def test_judge_trees_never_overwrites_weights(tmp_path: Path) -> None:
    from benchmarks import judge_trees

    path = tmp_path / "weights.json"
    path.write_text("{}")
    with pytest.raises(FileExistsError, match="exists"):
        judge_trees.save_ridge(path, "whole", {"rows": []}, 1.0, {"command": "c"})
    assert path.read_text() == "{}"


def test_a_weights_file_carries_the_plan_its_probes_run(tmp_path: Path) -> None:
    path = tmp_path / "judge.json"
    judge.save(path, _constant(1.0), {"learned": ["dehazing"]})
    assert judge.load_learned(path) == ("dehazing",)
    judge.save(tmp_path / "none.json", _constant(1.0), {})
    assert judge.load_learned(tmp_path / "none.json") == ()  # older files: the classical plan
    for bad in [["no_such_task"], "dehazing", [1]]:
        with pytest.raises(CheckpointError, match="learned"):
            judge.load_learned(_rewritten(path, "learned", bad))


@pytest.mark.parametrize(
    ("learned", "tool"), [((), "dark_channel_prior"), (("dehazing",), "learned_dehazing")]
)
def test_the_probed_plan_calls_the_learned_tool_where_asked(
    monkeypatch: pytest.MonkeyPatch, learned: tuple[str, ...], tool: str
) -> None:
    from tir_env.tools.presets import toolbox_tools

    tools = (*toolbox_tools("classical"), "learned_dehazing")
    env = TIREnv(combos="mio-a", max_steps=5, patch_size=64, tools=tools)
    env.reset(seed=1, options={"degradations": ("haze",)})
    called: list[str] = []

    def lookahead(image: torch.Tensor, calls: list) -> list:
        called.extend(c.tool for c in calls)
        return [image]

    monkeypatch.setattr(env, "lookahead", lookahead)
    judge.plan_output(env, env.current_batch(), ["haze"], "tuned", learned)
    assert called == [tool]


def test_a_search_agent_offers_the_tools_its_judges_probes_call(tmp_path: Path) -> None:
    path = tmp_path / "judge.json"
    judge.save(path, _constant(1.0), {"learned": ["dehazing"]})
    agent = make_agent("exhaustive", learned="", judge_weights=str(path))
    assert agent.required_tools == ("learned_dehazing",)  # the probes call it
    assert make_agent("exhaustive", learned="", judge="false").required_tools == ()
    with pytest.raises(WeightsNotFoundError, match="missing.json"):  # named before any episode
        make_agent("exhaustive", judge_weights=str(tmp_path / "missing.json"))
    whole = tmp_path / "whole.json"
    judge.save(whole, _constant(1.0), {"learned": ["brightening"]})
    agent = make_agent("exhaustive", learned="", judge_whole_weights=str(whole))
    assert "learned_brightening" in agent.required_tools  # the whole-photo probes call it
    with pytest.raises(WeightsNotFoundError, match="gone.json"):
        make_agent("greedy", judge_whole_weights=str(tmp_path / "gone.json"))


@contextlib.contextmanager
def _judge_network(tmp_path: Path, thresholds: dict[str, float] | None) -> Any:
    """The shipped weights, with a copy of perception as the judge's network (its thresholds)."""
    import shutil

    from tir_env import perception
    from tir_env.tools.learned.weights import SHIPPED_DIR, weights_folder

    folder = tmp_path / "weights"
    shutil.copytree(SHIPPED_DIR, folder)
    shutil.copy(folder / "perception.safetensors", folder / "perception_judge.safetensors")
    record = json.loads((folder / "perception.json").read_text())
    record["thresholds"] = {**record["thresholds"], **(thresholds or {})}
    (folder / "perception_judge.json").write_text(json.dumps(record))
    with weights_folder(folder):
        perception.reload()
        try:
            yield
        finally:
            perception.reload()
    perception.reload()


def test_the_judge_reads_its_own_network_when_one_is_shipped(tmp_path: Path) -> None:
    from tir_env import perception

    env = _dark_env()
    present, probed, _ = judge.probes(env, "tuned")
    with _judge_network(tmp_path / "same", None):
        assert perception.judge_network() == "perception_judge"
        same = judge.probes(env, "tuned")
    assert same[0] == present and [p.ratio for p in same[1]] == [p.ratio for p in probed]
    dark = next(p.ratio for p in probed if p.type == "dark")
    with _judge_network(tmp_path / "strict", {"dark": 0.99}):
        strict_present, strict, _ = judge.probes(env, "tuned")
    # its own threshold: darkness reads at a smaller share of it and is no longer present
    assert "dark" in present and "dark" not in strict_present
    assert all(p.ratio < dark for p in strict if p.type == "dark")
    assert set(strict_present) - {"dark"} == set(present) - {"dark"}  # the others unchanged


def test_a_corrupt_judge_network_is_a_named_error(tmp_path: Path) -> None:
    from tir_env import perception

    env = _dark_env()
    with _judge_network(tmp_path, None):
        path = tmp_path / "weights" / "perception_judge.safetensors"
        path.write_bytes(b"not a safetensors file")
        perception.reload()
        with pytest.raises(CheckpointError, match="perception_judge"):
            judge.probes(env, "tuned")


def test_judging_only_some_types_leaves_the_others_to_perception() -> None:
    from agents.search import SearchOptions
    from tir_env.errors import InvalidParameterError

    env = _dark_env()
    present, probed, _ = judge.probes(env, "tuned")
    assert "dark" in {p.type for p in probed}
    # a judge that would drop darkness, told to judge haze only: perception's call on it stands
    only_haze, _ = judge.judged_types(env, "tuned", _constant(-1.0), types=("haze",))
    assert "dark" in present and "dark" in only_haze
    dropped, _ = judge.judged_types(env, "tuned", _constant(-1.0))
    assert "dark" not in dropped
    nothing, executions = judge.judged_types(env, "tuned", _constant(-1.0), types=())
    assert (sorted(nothing), executions) == (sorted(present), 0)  # no probe runs
    with pytest.raises(InvalidParameterError, match="noise is not judged"):
        SearchOptions(judge_crop_types=("noise",))


@pytest.mark.parametrize(
    ("bias", "abstain", "ruling"),
    [(-1.0, 0.0, False), (-1.0, 2.0, None), (-3.0, 2.0, False), (+1.0, 2.0, True)],
)
def test_an_abstaining_judge_leaves_a_near_loss_to_the_caller(
    bias: float, abstain: float, ruling: bool | None
) -> None:
    env = _dark_env()  # darkness perceived and probed
    present, rulings, _ = judge.judge_rulings(env, "tuned", _constant(bias), abstain=abstain)
    assert "dark" in present and rulings["dark"] is ruling
    # judged_types is the same rulings without abstaining
    assert ("dark" in judge.judged_types(env, "tuned", _constant(bias))[0]) is (bias > 0)


@settings(max_examples=25, deadline=None)
@given(st.floats(-10.0, 10.0), st.floats(0.0, 10.0))
def test_abstaining_only_turns_outs_near_the_line_into_no_ruling(
    bias: float, abstain: float
) -> None:
    env = _dark_env()  # darkness perceived and probed
    _, plain, _ = judge.judge_rulings(env, "tuned", _constant(bias))
    _, rulings, _ = judge.judge_rulings(env, "tuned", _constant(bias), abstain=abstain)
    assert set(rulings) == set(plain)
    for kind, ruling in rulings.items():
        if plain[kind] is True or abstain == 0 or bias < -abstain:
            assert ruling is plain[kind]  # an in, or an out beyond the margin, stands
        else:
            assert ruling is None  # an out within the margin: no ruling


def test_confirming_a_judge_pairs_it_with_the_shipped_one_over_photos(tmp_path: Path) -> None:
    from benchmarks.judge_confirm import markdown, paired_difference

    keeps, drops = tmp_path / "keeps.json", tmp_path / "drops.json"
    judge.save(keeps, _constant(+1.0), {})  # calls every probed type
    judge.save(drops, _constant(-1.0), {})  # calls none
    x = [0.0] * WIDTH

    def row(episode: int, gain: float) -> dict[str, Any]:
        return {"episode": episode, "type": "dark", "seen": True, "gain": gain, "x": x}

    # perception saw each type, so dropping it loses the probe's gain; episode 2 has no probe
    rows = [row(0, 2.0), row(1, -1.0), row(3, 4.0), row(3, 1.0)]
    photos = ["p", "p", "q", "q"]
    d = paired_difference(rows, photos, keeps, drops)
    # per episode: -2, +1, 0, -5; by photo: p -0.5, q -2.5
    assert d["per_episode"] == pytest.approx(-1.5)
    assert d["photos"] == 2
    assert d["se"] == pytest.approx(np.std([-0.5, -2.5], ddof=1) / math.sqrt(2))
    assert paired_difference(rows, photos, keeps, keeps)["per_episode"] == 0.0
    report = {"command": "c", "kind": "whole", "images": "i", "rounds": [1, 2], "rows": rows}
    report |= {"episodes": 4, "difference": d}
    report |= {
        n: {"weights": "w", "margin": 0.0, "per_episode": 0.0} for n in ("shipped", "candidate")
    }
    for n in ("shipped", "candidate"):
        report[n] |= {"overruled": 0, "large_gains": 0, "large_losses": 0, "clean_false_alarms": 0}
    assert "-1.500 dB per episode (se 1.000 over 2 photos" in "\n".join(markdown(report))


@pytest.mark.parametrize(
    ("module", "extra"),
    [
        ("judge_confirm", ["--candidate", "agents/judge_weights.json"]),
        ("judge_range", []),
        ("judge_trees", []),
        ("train_judge", []),
    ],
)
def test_a_judge_study_refuses_an_existing_report_before_any_work(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys, module: str, extra: list[str]
) -> None:
    import importlib

    study = importlib.import_module(f"benchmarks.{module}")

    def no_work(*_: Any, **__: Any) -> None:
        raise AssertionError("the study started before refusing")

    for name in ("collect", "train_rows"):
        if hasattr(study, name):
            monkeypatch.setattr(study, name, no_work)
    report = tmp_path / "report.json"
    report.write_text("{}")
    with pytest.raises(SystemExit) as exit_info:
        study.main([*extra, "--json", str(report)])
    assert exit_info.value.code == 2
    assert "exists" in capsys.readouterr().err
    assert report.read_text() == "{}"  # the committed record is untouched


@pytest.mark.parametrize(("bias", "brightens"), [(-1.0, False), (+1.0, True)])
def test_fixed_with_the_judge_guard_plans_darkness_as_the_judge_rules(
    monkeypatch: pytest.MonkeyPatch, bias: float, brightens: bool
) -> None:
    monkeypatch.setattr(judge, "load", lambda path=judge.WEIGHTS_FILE: _constant(bias))
    env = _dark_env()
    agent = make_agent("fixed", guard="judge")
    agent.reset(env, {})
    assert any(c.tool == "gamma_correction" for c in agent.plan) is brightens
    _, _, probes = judge.probes(env, "tuned")
    assert agent.tool_executions == probes >= 1  # the probes' plans ran ahead and count
    assert set(judge.shipped_learned()) <= {
        t.removeprefix("learned_") for t in agent.required_tools
    }


def test_a_veto_only_rules_out_what_perception_saw_and_probes_nothing_else() -> None:
    env = _dark_env()
    present, probed, _ = judge.probes(env, "tuned")
    seen = [p.type for p in probed if p.type in present]
    _, vetoed, executions = judge.probes(env, "tuned", adds=False)
    assert [p.type for p in vetoed] == seen and executions >= 2 * len(seen)
    _, rulings, _ = judge.judge_rulings(env, "tuned", _constant(+1.0), adds=False)
    assert set(rulings) == set(seen)  # an unseen type gets no ruling however sure the judge is
    _, rulings, _ = judge.judge_rulings(env, "tuned", _constant(-1.0), adds=False)
    assert rulings == {t: False for t in seen}


def test_fixed_with_the_veto_guard_drops_darkness_it_saw(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(judge, "load", lambda path=judge.WEIGHTS_FILE: _constant(-1.0))
    agent = make_agent("fixed", guard="veto")
    agent.reset(_dark_env(), {})
    assert not any(c.tool == "gamma_correction" for c in agent.plan)


def test_fixed_judges_whole_photos_only_with_the_whole_guard(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from agents.baselines import perceived_tasks

    monkeypatch.setattr(judge, "load", lambda path=judge.WEIGHTS_FILE: _constant(-1.0))
    agent = make_agent("fixed", guard="judge-whole")
    agent.reset(_dark_env(), {})  # a crop: perception's darkness stands, nothing probed
    assert agent.tool_executions == 0 and any(c.tool == "gamma_correction" for c in agent.plan)
    monkeypatch.setattr(judge, "load", lambda path=judge.WEIGHTS_FILE: _constant(+1.0))
    whole = _whole_env(("dark", "noise"))
    assert "brightening" not in perceived_tasks(whole)  # darkness read under its threshold
    agent.reset(whole, {})  # judged in on the proxy (perception saw noise beside it)
    assert agent.tool_executions > 0 and any(c.tool == "gamma_correction" for c in agent.plan)
    assert agent.judge_overruled == {"added": ["dark"], "dropped": []}  # tir restore prints it


def test_restore_says_what_the_judge_overruled() -> None:
    from benchmarks.commands.restore import judge_line

    assert judge_line(None) is None and judge_line({"added": [], "dropped": []}) is None
    line = judge_line({"added": ["dark"], "dropped": ["haze"]})
    assert line is not None and line.endswith("added dark; ruled out haze")
    assert str(judge_line({"added": [], "dropped": ["haze"]})).endswith(": ruled out haze")


def test_fixed_judges_whole_photos_by_default_unless_another_reader_is_chosen() -> None:
    whole = _whole_env(("dark", "noise"))
    agent = make_agent("fixed")
    assert agent.guard == "judge-veto"
    agent.reset(whole, {})
    assert agent.tool_executions > 0  # darkness probed on the proxy
    chosen = make_agent("fixed", haze_threshold=0.4)  # the threshold the user set decides
    chosen.reset(whole, {})
    assert chosen.tool_executions == 0


@pytest.mark.parametrize("bias", [-1.0, +1.0])
def test_the_default_guard_without_crop_adds_vetoes_on_crops_and_adds_nothing_there(
    monkeypatch: pytest.MonkeyPatch, bias: float
) -> None:
    monkeypatch.setattr(judge, "load", lambda path=judge.WEIGHTS_FILE: _constant(bias))
    crop = _dark_env()
    plain = make_agent("fixed", guard="none")
    plain.reset(crop, {})
    agent = make_agent("fixed", crop_adds=())  # judge-veto, a veto only
    agent.reset(crop, {})
    _, vetoed, probes = judge.probes(crop, "tuned", adds=False)
    assert agent.tool_executions == probes >= 2  # only what perception saw was probed
    if bias > 0:  # the judge would add every type: on a crop it may not
        assert agent.plan == plain.plan
    else:  # every seen type vetoed
        assert [c for c in plain.plan if c not in agent.plan]
        assert not any(c.tool == "gamma_correction" for c in agent.plan)


@pytest.mark.parametrize("guard", ["judge", "veto"])
@pytest.mark.parametrize("clash", [{"haze_reader": "tone"}, {"haze_threshold": 0.4}])
def test_fixed_refuses_haze_options_the_judge_guard_would_ignore(
    clash: dict[str, Any], guard: str
) -> None:
    from tir_env.errors import ConfigValueError

    with pytest.raises(ConfigValueError, match=f"guard={guard}"):
        make_agent("fixed", guard=guard, **clash)


def test_a_search_agent_whose_crop_judge_may_not_add_keeps_perceptions_missing_types(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from agents.baselines import perceived_tasks

    env = _haze_read_under_threshold(monkeypatch)
    seen = perceived_tasks(env)
    assert "dehazing" not in seen
    adding, vetoing = make_agent("exhaustive"), make_agent("exhaustive", judge_crop_adds=False)
    adding.reset(env, {})
    vetoing.reset(env, {})
    assert set(vetoing.info["perceived_tasks"]) == set(seen)  # seen ones judged in, none added
    assert set(adding.info["perceived_tasks"]) == {*seen, "dehazing"}
    assert adding.judge_overruled == {"added": ["haze"], "dropped": []}  # tir restore says so
    assert vetoing.judge_overruled == {"added": [], "dropped": []}


def test_no_additions_beside_a_blocking_type_seen_on_a_crop(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from agents.baselines import perceived_tasks

    env = _haze_read_under_threshold(monkeypatch)
    assert "denoising" in perceived_tasks(env)  # noise seen, haze not: the judge would add haze
    blocked = make_agent("exhaustive", judge_crop_adds_blocked_by=("noise",))
    dark_only = make_agent(
        "exhaustive", judge_crop_adds_blocked_by=("noise",), judge_crop_blocked_adds=("dark",)
    )
    elsewhere = make_agent("exhaustive", judge_crop_adds_blocked_by=("rain",))
    fixed = make_agent("fixed", crop_adds_blocked_by=("noise",))
    for agent in (blocked, dark_only, elsewhere, fixed):
        agent.reset(env, {})
    assert blocked.judge_overruled == fixed.judge_overruled == {"added": [], "dropped": []}
    assert dark_only.judge_overruled == {"added": ["haze"], "dropped": []}  # haze not blocked
    assert elsewhere.judge_overruled == {"added": ["haze"], "dropped": []}  # no rain seen
    with pytest.raises(InvalidParameterError, match="not a degradation type"):
        make_agent("exhaustive", judge_crop_adds_blocked_by=("fog",))
    with pytest.raises(ConfigValueError, match="crop_adds_blocked_by"):
        make_agent("fixed", crop_adds_blocked_by=("noise",), guard="judge")


def test_fixed_crop_adds_lets_the_crop_judge_add_only_the_listed_types(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from agents.baselines import perceived_tasks

    env = _haze_read_under_threshold(monkeypatch)
    assert "dehazing" not in perceived_tasks(env)
    veto, haze, dark = (make_agent("fixed", crop_adds=a) for a in ((), ("haze",), ("dark",)))
    default = make_agent("fixed")  # adds haze since rule d3f3b6e
    for agent in (veto, haze, dark, default):
        agent.reset(env, {})
    assert default.plan == haze.plan
    assert haze.judge_overruled == {"added": ["haze"], "dropped": []}
    assert any(tool_info(c.tool).task == "dehazing" for c in haze.plan)
    assert veto.judge_overruled == dark.judge_overruled == {"added": [], "dropped": []}
    assert dark.plan == veto.plan  # haze read, but only darkness may be added


def test_fixed_whole_adds_lets_the_whole_photo_judge_add_only_the_listed_types(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(judge, "load", lambda path=judge.WEIGHTS_FILE: _constant(+1.0))
    env = _whole_env()  # darkness read under its threshold, noise seen
    assert judge.is_whole(env)
    agents = {
        adds: make_agent("fixed", whole_adds=adds) for adds in (("dark", "haze"), ("haze",), ())
    }
    for agent in agents.values():
        agent.reset(env, {})
    assert "dark" in agents[("dark", "haze")].judge_overruled["added"]  # the default's adds
    assert "dark" not in agents[("haze",)].judge_overruled["added"]
    assert agents[()].judge_overruled["added"] == []
    assert make_agent("fixed").options.whole_adds == ("dark", "haze")  # records unchanged


def test_search_judge_whole_adds_lets_the_whole_photo_judge_add_only_the_listed_types(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(judge, "load", lambda path=judge.WEIGHTS_FILE: _constant(+1.0))
    env = _whole_env()  # darkness read under its threshold, noise seen
    both, haze = (
        make_agent("exhaustive", judge_whole_adds=adds, judge_margin=0.0)
        for adds in (("dark", "haze"), ("haze",))
    )
    for agent in (both, haze):
        agent.reset(env, {})
    assert "dark" in both.judge_overruled["added"]
    assert "dark" not in haze.judge_overruled["added"]
    assert make_agent("greedy").options.judge_whole_adds == ("dark", "haze")  # records unchanged


def test_tir_restore_gives_fixed_whole_adds_dark_unless_told_otherwise() -> None:
    from benchmarks.commands.restore import restore_agent_options

    assert restore_agent_options([], "fixed") == {"whole_adds": ("dark",)}
    assert restore_agent_options(["fixed.params=default"], "fixed") == {
        "whole_adds": ("dark",),
        "params": "default",
    }
    # a user's guard or whole_adds is theirs alone (veto refuses whole_adds)
    assert restore_agent_options(["fixed.guard=veto"], "fixed") == {"guard": "veto"}
    assert restore_agent_options(["whole_adds=dark,haze"], "fixed") == {
        "whole_adds": ("dark", "haze")
    }
    for search in ("exhaustive", "greedy"):
        assert restore_agent_options([], search) == {"judge_whole_adds": ("dark",)}
    assert restore_agent_options(["exhaustive.judge=false"], "exhaustive") == {"judge": False}
    assert restore_agent_options([], "ppo") == {"judge_whole_adds": ()}  # rule 2acf6eb
    assert restore_agent_options(["ppo.judge_types=dark,haze"], "ppo") == {
        "judge_types": ("dark", "haze")
    }
    assert restore_agent_options([], "vlm") == {"judge_whole_adds": ("dark",)}  # rule 911efdd
    assert restore_agent_options(["vlm.guard=none"], "vlm") == {"guard": "none"}
    assert restore_agent_options([], "agenticir") == {}


def _asked_judge(monkeypatch: pytest.MonkeyPatch, option: str) -> list[object]:
    """A stand-in for the judge that rules nothing and records each call's ``option``."""
    asked: list[object] = []

    def rulings(env, params, **options):  # noqa: ANN001, ANN003, ANN202
        asked.append(options[option])
        return [], {}, 0

    monkeypatch.setattr(judge, "judge_rulings", rulings)
    return asked


@pytest.mark.parametrize(("name", "bad"), [("ppo", "rain"), ("vlm", "noise")])
def test_judge_whole_adds_reaches_the_judge_on_whole_photos_only(
    monkeypatch: pytest.MonkeyPatch, name: str, bad: str
) -> None:
    asked = _asked_judge(monkeypatch, "adds")
    agent = make_agent(name, judge_whole_adds=())
    agent.reset(_whole_env(), {})
    agent.reset(_haze_read_under_threshold(monkeypatch), {})  # a crop: the judge may add
    assert asked == [(), True]
    with pytest.raises(ConfigValueError, match="judge_whole_adds"):
        make_agent(name, judge_whole_adds=(bad,))
    assert make_agent(name).options.judge_whole_adds == ("dark", "haze")  # records unchanged


@pytest.mark.parametrize(
    ("name", "option"),
    [("fixed", "whole_adds_blocked_by"), ("exhaustive", "judge_whole_adds_blocked_by")],
)
def test_no_brightening_beside_rain_on_whole_photos_only_where_asked(
    monkeypatch: pytest.MonkeyPatch, name: str, option: str
) -> None:
    asked: list[tuple[object, object]] = []

    def rulings(env, params, models=None, **options):  # noqa: ANN001, ANN003, ANN202
        asked.append((options["adds_blocked_by"], options["blocked_adds"]))
        return [], {}, 0

    monkeypatch.setattr(judge, "judge_rulings", rulings)
    monkeypatch.setattr(streaks, "rain_on_top", lambda image: False)  # no rain on top here
    make_agent(name, **{option: ("rain",)}).reset(_whole_env(), {})
    make_agent(name, **{option: ("rain",)}).reset(_haze_read_under_threshold(monkeypatch), {})
    make_agent(name).reset(_whole_env(), {})
    assert asked[0] == (("rain",), judge.WHOLE_BLOCKED_ADDS)  # no brightening beside rain
    assert asked[1][0] == ()  # a crop: the crop judge's own option, as the records were played
    assert asked[2][0] == ()  # the default beside rain that is not on top (rule 01a712c failed)
    with pytest.raises((ConfigValueError, InvalidParameterError), match=option):
        make_agent(name, **{option: ("drizzle",)})


@pytest.mark.parametrize("on_top", [False, True])
@pytest.mark.parametrize(
    ("name", "option", "default"),
    [("fixed", "whole_rain_on_top", True), ("exhaustive", "judge_whole_rain_on_top", True)],
)
def test_no_brightening_beside_rain_on_top_of_a_whole_photo(
    monkeypatch: pytest.MonkeyPatch, on_top: bool, name: str, option: str, default: bool
) -> None:
    asked: list[object] = []

    def rulings(env, params, models=None, **options):  # noqa: ANN001, ANN003, ANN202
        asked.append(options["adds_blocked_by"])
        return [], {}, 0

    read: list[tuple[int, ...]] = []

    def rain_on_top(image: np.ndarray) -> bool:
        read.append(image.shape)
        return on_top

    monkeypatch.setattr(judge, "judge_rulings", rulings)
    monkeypatch.setattr(streaks, "rain_on_top", rain_on_top)
    env = _whole_env()
    make_agent(name, **{option: True}).reset(env, {})
    make_agent(name, **{option: False}).reset(env, {})
    make_agent(name).reset(env, {})  # on by default (rules fddc28f, 885d8bb)
    make_agent(name, **{option: True}).reset(_haze_read_under_threshold(monkeypatch), {})  # a crop
    shown = ("rain",) if on_top else ()
    assert asked == [shown, (), shown if default else (), ()]
    photo_shape = env.perception_input()[0].shape  # read on the photo perception reads
    assert read == [photo_shape] * (2 if default else 1)


def test_vlm_judge_whole_alone_reaches_the_judge_on_whole_photos_only(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    asked = _asked_judge(monkeypatch, "alone")
    agent = make_agent("vlm", judge_whole_alone=False)
    agent.reset(_whole_env(), {})
    agent.reset(_haze_read_under_threshold(monkeypatch), {})  # a crop: the judge may add alone
    make_agent("vlm").reset(_whole_env(), {})
    assert asked == [False, True, True]  # the default adds alone, as the records were played


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"crop_adds": ("noise",)}, "judged types"),
        ({"crop_adds": ("dark",), "guard": "veto"}, ""),
        ({"crop_adds_alone": True, "guard": "none"}, "guard=none"),
        ({"whole_adds": ("rain",)}, "whole_adds takes the judged types"),
        ({"whole_adds": ("dark",), "guard": "veto"}, "whole_adds, whole_alone, whole_adds_"),
        ({"whole_alone": True, "guard": "none"}, "whole_adds, whole_alone, whole_adds_"),
        ({"whole_adds_blocked_by": ("rain",), "guard": "veto"}, "whole_rain_on_top apply"),
        ({"whole_rain_on_top": False, "guard": "veto"}, "whole_rain_on_top apply"),
        ({"whole_adds_blocked_by": ("drizzle",)}, "whole_adds_blocked_by takes degradation"),
    ],
)
def test_fixed_refuses_crop_adds_it_cannot_apply(options: dict[str, Any], match: str) -> None:
    from tir_env.errors import ConfigValueError

    with pytest.raises(ConfigValueError, match=match or "guard=veto"):
        make_agent("fixed", **options)
    make_agent("fixed", guard="none")  # the default crop_adds is idle there, not refused


@given(
    adds=st.one_of(st.booleans(), st.lists(st.sampled_from(judge.JUDGED), unique=True)),
    type_name=st.sampled_from(judge.JUDGED),
)
def test_may_add_follows_a_flag_or_a_list(adds: bool | list[str], type_name: str) -> None:
    expected = adds if isinstance(adds, bool) else type_name in adds
    assert judge.may_add(adds, type_name) is expected


def test_a_search_agents_crop_judge_adds_only_the_types_it_lists(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from agents.search import SearchOptions
    from tir_env.errors import InvalidParameterError

    env = _haze_read_under_threshold(monkeypatch)
    haze, dark = (make_agent("exhaustive", judge_crop_adds=a) for a in (("haze",), ("dark",)))
    haze.reset(env, {})
    dark.reset(env, {})
    assert haze.judge_overruled == {"added": ["haze"], "dropped": []}
    assert dark.judge_overruled == {"added": [], "dropped": []}
    with pytest.raises(InvalidParameterError, match="noise is not judged"):
        SearchOptions(judge_crop_adds=("noise",))


@given(present=SEEN_TYPES, rulings=RULINGS)
def test_kept_adds_adds_a_type_only_beside_a_seen_type_that_stays(
    present: list[str], rulings: dict[str, bool | None]
) -> None:
    kept = judge.kept_adds(present, rulings)
    assert set(kept) == set(rulings)
    chosen = judge.chosen_types(present, kept)
    added = [t for t in chosen if t not in present]
    assert not added or any(t in present for t in chosen)  # never an addition alone
    for t in present:  # what perception saw is ruled as before
        assert kept.get(t) == rulings.get(t)


def test_fixed_adds_nothing_to_a_crop_cleared_of_what_perception_saw(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # with crop_adds_alone=false the crop is left alone instead of dehazed
    _darkness_ruled_out_haze_ruled_in(monkeypatch)
    env = _dark_env()
    alone, kept = make_agent("fixed", crop_adds_alone=True), make_agent("fixed")
    alone.reset(env, {})
    kept.reset(env, {})
    assert alone.judge_overruled == {"added": ["haze"], "dropped": ["dark"]}
    assert kept.judge_overruled == {"added": [], "dropped": ["dark"]}
    assert not any(tool_info(c.tool).task in ("dehazing", "brightening") for c in kept.plan)


def test_a_search_agents_crop_judge_adds_nothing_to_a_crop_cleared_of_what_perception_saw(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _darkness_ruled_out_haze_ruled_in(monkeypatch)
    env = _dark_env()
    alone = make_agent("exhaustive", judge_crop_adds_alone=True)
    kept = make_agent("exhaustive", judge_crop_adds_alone=False)
    alone.reset(env, {})
    kept.reset(env, {})
    assert alone.judge_overruled == {"added": ["haze"], "dropped": ["dark"]}
    assert kept.judge_overruled == {"added": [], "dropped": ["dark"]}


def _darkness_ruled_out_haze_ruled_in(monkeypatch: pytest.MonkeyPatch) -> None:
    """Perception reads darkness alone, haze near its threshold; the judge rules darkness out
    and haze in (its probes stubbed: no plan runs)."""
    image = torch.zeros(1, 3, 8, 8)

    def probes(env: Any, params: str, types: Any = judge.JUDGED, *args: Any, **kw: Any) -> Any:
        made = [judge.Probe(t, 0.8, np.zeros(WIDTH), image, image) for t in types]
        return ["dark"], made, 2 * len(made)

    models = {"dark": _constant(-1.0)["dark"], "haze": _constant(+1.0)["haze"]}
    monkeypatch.setattr(judge, "load", lambda path=judge.WEIGHTS_FILE: models)
    monkeypatch.setattr(judge, "probes", probes)


@given(present=SEEN_TYPES, rulings=RULINGS)
def test_cleared_only_blocks_additions_only_where_every_seen_type_was_ruled_out(
    present: list[str], rulings: dict[str, bool | None]
) -> None:
    kept = judge.kept_adds(present, rulings, cleared_only=True)
    chosen = judge.chosen_types(present, kept)
    added = [t for t in chosen if t not in present]
    cleared = bool(present) and not any(t in present for t in chosen)
    assert not (added and cleared)  # nothing added in place of what the judge ruled out
    if not present:  # an image perception read as clean keeps the judge's additions
        assert kept == rulings


def _haze_read_under_threshold(monkeypatch: pytest.MonkeyPatch) -> TIREnv:
    """A crop with haze and noise, haze read under its threshold; a judge that adds anything."""
    monkeypatch.setattr(judge, "load", lambda path=judge.WEIGHTS_FILE: _constant(+1.0))
    env = TIREnv(combos="mio-a", max_steps=5, patch_size=64)
    env.reset(seed=2, options={"degradations": ("haze", "noise")})
    return env
