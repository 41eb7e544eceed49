"""Vision pretraining of the tiny VLM (``tir train vlm-vision``) and the hidden-size prompt."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from agents.vlm import prompt, vision
from agents.vlm.model import META_FILE, TinySpec, build_tiny_for_tools, load_vlm
from benchmarks import train_perception as tp
from benchmarks import train_vlm_vision as recipe
from tir_env.errors import RunExistsError
from tir_env.tools.base import tool_names
from tir_env.types import StepRecord, ToolCall

SPEC = TinySpec(vocab_size=600, image_size=56, vision_dim=16, vision_depth=1, vision_heads=2)


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.set_num_threads(1)
    folder = tmp_path_factory.mktemp("vision") / "base"
    return build_tiny_for_tools(folder, tuple(tool_names(kinds=("classical",))), SPEC)


def _fake_examples(n: int, seed: int) -> tp.Examples:
    """Labelled 32 px crops: noise present on half of them (no corpus photos needed)."""
    rng = np.random.default_rng(seed)
    images = rng.integers(90, 160, (n, 32, 32, 3)).astype(np.uint8)
    presence = np.zeros((n, 8), np.float32)
    presence[::2, 1] = 1.0
    images[::2] = np.clip(images[::2] + rng.normal(0, 40, images[::2].shape), 0, 255)
    severity = presence * 0.5
    return tp.Examples(
        images,
        presence,
        severity,
        np.ones(n, np.float32),
        np.zeros((n, 2), np.float32),
        np.arange(n),
    )


def _config(tmp_path: Path, base: Path, **kw: object) -> recipe.VisionConfig:
    fields = dict(
        out=str(tmp_path / "out"),
        base=str(base),
        steps=2,
        batch=4,
        align_steps=2,
        align_batch=2,
        val_limit=8,
        eval_every=1,
        obs_size=32,
        threads=1,
    )
    fields.update(kw)
    return recipe.VisionConfig(**fields)  # type: ignore[arg-type]


def test_two_steps_save_a_folder_that_loads_with_a_changed_tower(
    tmp_path: Path, base: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        recipe, "_examples", lambda cfg: (_fake_examples(16, 0), _fake_examples(8, 1))
    )
    cfg = _config(tmp_path, base)
    record = recipe.main(cfg)

    out = Path(cfg.out)
    assert record["visual_changed"]
    assert set(record["val"]["auc"]) == set(tp.AGENTICIR_TYPES)
    assert record["alignment"]["steps"] == 2
    assert json.loads((out / "vision_record.json").read_text())["command"].startswith(
        "tir train vlm-vision"
    )
    meta = json.loads((out / META_FILE).read_text())
    assert meta["full_modules"] == ["visual"] and "vision_pretraining" in meta
    loaded, original = load_vlm(out), load_vlm(base)
    new = vision.visual(loaded).state_dict()
    old = vision.visual(original).state_dict()
    assert new.keys() == old.keys()
    assert any(not torch.equal(new[k], old[k]) for k in new)
    # The language model is untouched by both stages (the tower alone was trained).
    lm_new = loaded.base_model.lm_head.weight
    assert torch.equal(lm_new, original.base_model.lm_head.weight)
    assert loaded.image_size == original.image_size
    # The saved head scores the SFT task-choice episodes (4 test photos x 8 types x 1 seed).
    choice = recipe.head_choice(cfg.out, seeds=1, patch_size=32)
    assert choice["n"] == 32 and sum(choice["chosen"].values()) == 32


def test_a_used_out_is_refused_before_any_work(
    tmp_path: Path, base: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_data(cfg: recipe.VisionConfig) -> None:
        raise AssertionError("the refusal must come before loading data")

    monkeypatch.setattr(recipe, "_examples", no_data)
    cfg = _config(tmp_path, base)
    Path(cfg.out).mkdir()
    (Path(cfg.out) / "config.json").write_text("{}")
    with pytest.raises(RunExistsError, match="already holds a run"):
        recipe.main(cfg)


def test_the_cli_exits_2_on_a_used_out(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from benchmarks.commands.configs import TrainRecipeConfig
    from benchmarks.commands.train import cmd_train

    (tmp_path / "tir_vlm.json").write_text("{}")
    config = TrainRecipeConfig(algo="vlm-vision", train_args=("--out", str(tmp_path)))
    assert cmd_train(config) == 2
    assert "already holds a run" in capsys.readouterr().err


def test_config_parsing() -> None:
    cfg = recipe.parse_args(["--steps", "3", "--align-steps", "0", "--vision-dim", "48"])
    assert (cfg.steps, cfg.align_steps, cfg.vision_dim) == (3, 0, 48)
    assert recipe.parse_args([]) == recipe.VisionConfig()
    assert recipe.command_of(cfg) == (
        "tir train vlm-vision --vision-dim 48 --steps 3 --align-steps 0"
    )
    with pytest.raises(SystemExit) as err:
        recipe.parse_args(["--batch", "0"])
    assert err.value.code == 2


@settings(max_examples=25, deadline=None)
@given(
    h=st.integers(8, 700),
    w=st.integers(8, 700),
    left=st.integers(0, 9),
)
def test_the_hidden_size_prompt_has_no_size(h: int, w: int, left: int) -> None:
    image = np.zeros((h, w, 3), np.uint8)
    record = StepRecord(ToolCall("dct_denoise", {}), {}, {}, 0.0)
    shown = prompt.first_user_text(image, left), prompt.next_user_text(image, [record], left)
    hidden = (
        prompt.first_user_text(image, left, prompt.TurnText(show_size=False)),
        prompt.next_user_text(image, [record], left, prompt.TurnText(show_size=False)),
    )
    for text in shown:
        assert f"{w}x{h}" in text
    for text in hidden:
        assert f"{w}x{h}" not in text and "pixels" not in text
        assert f"Steps left: {left}" in text
    call = ToolCall("dct_denoise", {})
    msgs = prompt.dialogue(
        ["dct_denoise"], [image, image], [call], [record], 3, "brief", prompt.TurnText(False)
    )
    assert not any(f"{w}x{h}" in json.dumps(m) for m in msgs)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 1), st.booleans()), min_size=2, max_size=30))
def test_auc_is_the_share_of_correctly_ordered_pairs(pairs: list[tuple[float, bool]]) -> None:
    scores = np.array([s for s, _ in pairs])
    truth = np.array([t for _, t in pairs])
    pos, neg = scores[truth], scores[~truth]
    if len(pos) == 0 or len(neg) == 0:
        assert np.isnan(vision.auc(scores, truth))
        return
    wins = sum(float(p > n) + 0.5 * float(p == n) for p in pos for n in neg)
    assert vision.auc(scores, truth) == pytest.approx(wins / (len(pos) * len(neg)))


def test_alignment_answers_name_tasks_or_clean() -> None:
    presence = np.zeros(8, np.float32)
    assert recipe._answer(presence) == "clean"
    presence[[1, 4]] = 1.0  # noise, haze
    answer = recipe._answer(presence)
    assert answer.count(",") == 1 and "clean" not in answer


def test_stale_expert_episodes_raise_or_are_dropped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from agents import experts
    from agents.vlm import trajectories
    from tir_env.errors import ExpertDataError

    cfg = experts.CollectConfig(
        out=str(tmp_path / "experts"),
        images="bundled:val",
        protocols=("single",),
        patch_size=32,
        max_steps=2,
        limit=2,
        num_envs=2,
        progress=False,
    )
    experts.collect(cfg)
    records = experts.load_records(cfg.out)
    stale = [dict(records[0], final_psnr=records[0]["final_psnr"] + 0.01), *records[1:]]
    monkeypatch.setattr(experts, "load_records", lambda folder: stale)
    with pytest.raises(ExpertDataError, match="replays to"):
        trajectories.from_experts(cfg.out)
    kept = trajectories.from_experts(cfg.out, stale="drop")
    assert [t.info["expert_index"] for t in kept] == [r["index"] for r in records[1:]]


def test_sft_can_keep_a_pretrained_tower_frozen(base: Path) -> None:
    from agents.vlm.model import LoraSpec
    from agents.vlm.sft import parse_args

    cfg = parse_args(["--full-modules", "merger"])
    assert cfg.full_modules == ("merger",) and parse_args([]).full_modules == ()
    vlm = load_vlm(base, lora=LoraSpec(full=cfg.full_modules or None))
    trained = {n for n, p in vlm.model.named_parameters() if p.requires_grad}
    assert any(".merger." in n for n in trained)
    assert not any(".blocks." in n or "patch_embed" in n for n in trained)
