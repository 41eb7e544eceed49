"""The expert trajectory dataset: records, replay, resume, corruption, determinism, SFT."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from gymnasium.utils import seeding
from hypothesis import given, settings
from hypothesis import strategies as st

from agents import experts as E
from tir_env import data
from tir_env.degradations.protocols import COMBOS, MIO_GROUP_C, OOD_D3, TRAINING
from tir_env.env import TIREnv
from tir_env.errors import ExpertDataError
from tir_env.images import save_image

PHOTOS = ("chelsea", "coffee")


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> Path:
    """A folder source of two bundled photos."""
    folder = tmp_path_factory.mktemp("photos")
    for name in PHOTOS:
        save_image(folder / f"{name}.png", data.bundled("test").load(name))
    return folder


def _cfg(photos: Path, out: Path, **kw) -> E.CollectConfig:
    base = dict(
        out=str(out),
        images=str(photos),
        protocols=("single", "mio-a"),
        patch_size=32,
        max_steps=4,
        num_envs=2,
        shard_size=2,
        limit=4,
        progress=False,
    )
    return E.CollectConfig(**{**base, **kw})


@pytest.fixture(scope="module")
def dataset(photos, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("experts") / "ds"
    E.collect(_cfg(photos, out), command="test")
    return out


def _strip(records):
    return [json.dumps(r, sort_keys=True) for r in records]


def test_training_protocols_keep_evaluation_combinations_unseen():
    train = {frozenset(c) for p in TRAINING for c in COMBOS[p]}
    assert not train & {frozenset(c) for c in MIO_GROUP_C + OOD_D3 + COMBOS["mio-b"]}
    assert any(len(c) == 3 for c in COMBOS["train-d3"]) and len(COMBOS["train-d3"]) == 44


def test_collect_writes_records_and_manifest(dataset, photos):
    manifest = E.load_manifest(dataset)
    assert manifest["expert"] == "exhaustive-ref" and manifest["command"] == "test"
    assert manifest["counts"]["episodes"] == 4 and len(manifest["shards"]) == 2
    assert manifest["counts"]["by_protocol"] == {"single": 2, "mio-a": 2}  # protocols alternate
    assert "ids_sha256" in manifest["images"] and manifest["tir_version"]
    records = E.load_records(dataset)
    assert [r["index"] for r in records] == [0, 1, 2, 3]
    env = TIREnv(**E.env_kwargs(E.config_of(dataset)))
    for r in records:
        assert r["calls"] and len(r["psnr_steps"]) == len(r["calls"])
        assert r["final_psnr"] == r["psnr_steps"][-1] > r["input_psnr"]  # the expert improves
        assert r["tool_executions"] >= len(r["calls"])
        images = E.replay(r, env)  # regenerated; the recorded PSNR checked
        assert len(images) == len(r["calls"]) + 1 and images[0].shape == (32, 32, 3)
        c = r["crop"]
        photo = data.source(str(photos)).load(r["image_id"])
        crop = photo[c["top"] : c["top"] + 32, c["left"] : c["left"] + 32]
        np.testing.assert_array_equal(crop, env.clean_image())


def test_replay_detects_a_changed_record(dataset):
    record = dict(E.load_records(dataset)[0])
    record["psnr_steps"] = [p + 1.0 for p in record["psnr_steps"]]
    env = TIREnv(**E.env_kwargs(E.config_of(dataset)))
    with pytest.raises(ExpertDataError, match="replaying"):
        E.replay(record, env)


def test_resume_after_interruption_has_no_duplicates_and_no_loss(
    dataset, photos, tmp_path, monkeypatch
):
    out = tmp_path / "ds"
    real = E.collect_chunk
    calls = {"n": 0}

    def dies_on_second_chunk(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(E, "collect_chunk", dies_on_second_chunk)
    with pytest.raises(KeyboardInterrupt):
        E.collect(_cfg(photos, out, num_envs=1))
    monkeypatch.setattr(E, "collect_chunk", real)
    partial = out / "shard-00000.jsonl.partial"
    assert len(partial.read_text().splitlines()) == 1
    with partial.open("a") as fh:  # killed in the middle of writing the next line
        fh.write('{"index": 1, "calls": [')
    E.collect(_cfg(photos, out, num_envs=1))
    # Same episodes as the uninterrupted run: nothing lost or repeated; deterministic.
    assert _strip(E.load_records(out)) == _strip(E.load_records(dataset))
    assert not list(out.glob("*.partial"))


def test_a_corrupt_or_cut_short_shard_is_detected_and_redone(dataset, photos, tmp_path):
    out = tmp_path / "ds"
    shutil.copytree(dataset, out)
    shard = out / "shard-00001.jsonl"
    shard.write_text(shard.read_text().splitlines()[0] + "\n")  # cut short
    with pytest.raises(ExpertDataError, match="corrupt"):
        E.load_records(out)
    E.collect(_cfg(photos, out))
    assert _strip(E.load_records(out)) == _strip(E.load_records(dataset))


def test_a_larger_limit_extends_the_dataset(dataset, photos, tmp_path):
    out = tmp_path / "ds"
    shutil.copytree(dataset, out)
    E.collect(_cfg(photos, out, limit=5))
    records = E.load_records(out)
    assert [r["index"] for r in records] == [0, 1, 2, 3, 4]
    assert _strip(records[:4]) == _strip(E.load_records(dataset))


def test_other_settings_are_refused(dataset, photos):
    with pytest.raises(ExpertDataError, match="other settings"):
        E.collect(_cfg(photos, dataset, patch_size=48))


def test_sft_reads_the_expert_dataset_with_perturbed_copies(dataset):
    from agents.vlm import sft
    from agents.vlm import trajectories as T
    from agents.vlm.perturb import PerturbConfig, perturb_all

    trajs = sft._load_or_collect((str(dataset),), "train", sft.SFTConfig(), env=None)
    records = E.load_records(dataset)
    assert [t.calls for t in trajs] == [E.calls_of(r) for r in records]
    assert all(t.source == "expert" and t.records[-1].call is None for t in trajs)
    assert [round(t.gain(), 3) for t in trajs] == [
        round(r["final_psnr"] - r["input_psnr"], 3) for r in records
    ]
    env = TIREnv(**E.env_kwargs(E.config_of(dataset)))
    variants = perturb_all(env, trajs, PerturbConfig(p=1.0), seed=0, progress=False)
    assert variants and all(v.source == "perturbed" for v in variants)
    assert T.answers(trajs[0], 4)[-1] is None


@settings(max_examples=30, deadline=None)
@given(
    h=st.integers(8, 80),
    w=st.integers(8, 80),
    size=st.sampled_from([8, 16, 32]),
    seed=st.integers(0, 2**32 - 1),
)
def test_crop_window_matches_the_env_patch_draw(h, w, size, seed):
    photo = np.random.default_rng(0).integers(0, 256, (h, w, 3), dtype=np.uint8)
    rng, _ = seeding.np_random(seed)
    patch = data.random_patch(photo, size, rng)
    c = E.crop_window(photo.shape, size, seed)
    if min(h, w) >= size:
        np.testing.assert_array_equal(
            photo[c["top"] : c["top"] + size, c["left"] : c["left"] + size], patch
        )
    assert 0 <= c["top"] <= c["height"] - size and 0 <= c["left"] <= c["width"] - size


@settings(max_examples=30, deadline=None)
@given(
    ids=st.lists(st.text("abcdef", min_size=1, max_size=4), min_size=1, max_size=5, unique=True),
    extra=st.text("xyz", min_size=1, max_size=3),
    seed=st.integers(0, 100),
)
def test_episode_seeds_are_stable_when_photos_are_added(ids, extra, seed):
    before = E.episode_specs(ids, ("single", "mio-a"), 1, seed)
    after = E.episode_specs([*ids, extra], ("single", "mio-a"), 1, seed)
    key = {(s.image_id, s.degradations): s.seed for s in after}
    assert all(key[(s.image_id, s.degradations)] == s.seed for s in before)
    assert len({s.index for s in after}) == len(after) == len(ids + [extra]) * 16
