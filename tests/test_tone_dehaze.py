"""``tone_dehaze``: its statistics, its trees file, the tool, and how the plans name it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from agents.baselines import learned_tool, plan_tool
from tir_env.errors import CheckpointError, ConfigValueError
from tir_env.tools.base import TOOLS, register_tool
from tir_env.tools.learned import tone
from tir_env.tools.learned.weights import load_state, save_state, weights_folder

torch.set_num_threads(1)


def hazy(clean: torch.Tensor, t: float = 0.5, airlight: float = 0.9) -> torch.Tensor:
    """``clean`` under a uniform haze of transmission ``t``."""
    return clean * t + airlight * (1.0 - t)


def fitted_heads(n: int = 300, seed: int = 0) -> dict[str, tone.TreeEnsemble]:
    """Trees fitted on random crops under random uniform haze (or none): a small real fit."""
    from benchmarks.train_tone_dehaze import fit

    rng = np.random.default_rng(seed)
    rows, targets, hazed = [], [], []
    for _ in range(n):
        clean = torch.from_numpy(rng.random((1, 3, 24, 24), dtype=np.float32)) ** 1.5
        t = float(rng.uniform(0.3, 1.0))
        hazed.append(rng.random() < 0.7)
        given_ = hazy(clean, t) if hazed[-1] else clean
        rows.append(tone.tone_features(given_[0]))
        (m_in, s_in), (m_out, s_out) = tone.luminance_level(given_), tone.luminance_level(clean)
        targets.append([float(m_out - m_in), float(s_out - s_in)])
    perceived = rng.uniform(0.0, 1.0, n)  # an uninformative reading: the statistics must carry it
    data = {"x": np.stack(rows), "y": np.array(targets), "perceived": perceived}
    return fit(data | {"hazy": np.array(hazed)})


@pytest.fixture(scope="module")
def trees_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A weights folder holding only a small fitted ``tone_dehaze`` file."""
    folder = tmp_path_factory.mktemp("tone")
    save_state(tone.tensors_of(fitted_heads()), folder / f"{tone.NAME}.safetensors", {"test": 1})
    return folder


@pytest.fixture
def registered(trees_folder: Path) -> Iterator[tone.ToneDehaze]:
    """The tool, registered and reading ``trees_folder`` (unregistered after, if it was not)."""
    added = tone.NAME not in TOOLS
    with weights_folder(trees_folder):
        if added:
            register_tool(tone.ToneDehaze)
        try:
            yield tone.ToneDehaze()
        finally:
            if added:
                TOOLS.remove(tone.NAME)


@settings(max_examples=40, deadline=None)
@given(
    h=st.integers(1, 40),
    w=st.integers(1, 40),
    seed=st.integers(0, 2**16),
    flat=st.booleans(),
)
def test_features_finite_on_any_image(h: int, w: int, seed: int, flat: bool) -> None:
    """Any size (one pixel, one row, a flat image) gives every statistic, all finite."""
    rng = np.random.default_rng(seed)
    image = np.full((3, h, w), 0.5, np.float32) if flat else rng.random((3, h, w), np.float32)
    feats = tone.tone_features(torch.from_numpy(image))
    assert feats.shape == (tone.N_FEATURES,)
    assert np.isfinite(feats).all()


def test_big_images_are_read_on_a_subsample() -> None:
    """An image over the read limit is thinned to at most that many pixels."""
    image = np.zeros((3, 2048, 1024), np.float32)
    thin = tone._thin(image)
    assert thin.shape[1] * thin.shape[2] <= tone.MAX_READ_PIXELS


def test_strength_zero_leaves_the_image(registered: tone.ToneDehaze) -> None:
    """``strength=0`` applies none of the change."""
    image = torch.rand(2, 3, 32, 32)
    out = registered(image, {"strength": 0.0})
    assert torch.allclose(out, image, atol=1e-6)


def test_it_undoes_a_uniform_haze(registered: tone.ToneDehaze) -> None:
    """On a hazed crop the tool lands closer to the clean crop than the input was."""
    from tir_env.metrics import fast

    gen = torch.Generator().manual_seed(3)
    clean = torch.rand(4, 3, 24, 24, generator=gen) ** 1.5
    given_ = hazy(clean, 0.45)
    before = fast.psnr(given_, clean).mean()
    after = fast.psnr(registered(given_), clean).mean()
    assert after > before + 3.0


def test_per_image_strength_matches_single_calls(registered: tone.ToneDehaze) -> None:
    """``call_many`` with one strength per image equals the calls one at a time."""
    images = hazy(torch.rand(3, 3, 16, 16), 0.6)
    strengths = [{"strength": s} for s in (0.0, 0.5, 1.2)]
    many = registered.call_many(images, strengths)
    for k, params in enumerate(strengths):
        assert torch.allclose(many[k], registered(images[k : k + 1], params)[0], atol=1e-6)


def test_trees_round_trip(trees_folder: Path) -> None:
    """The saved arrays read back into the heads that predict as before."""
    state = load_state(trees_folder / f"{tone.NAME}.safetensors")
    heads = tone.read_trees(state, "test")
    x = np.stack([tone.tone_features(torch.rand(3, 8, 8)) for _ in range(4)])
    again = tone.read_trees(tone.tensors_of(heads), "again")
    for head in tone.HEADS:
        assert np.allclose(heads[head].predict(x), again[head].predict(x))


def test_a_file_without_a_head_is_named(trees_folder: Path) -> None:
    """A file lacking the contrast trees is refused, naming what is missing."""
    state = load_state(trees_folder / f"{tone.NAME}.safetensors")
    partial = {k: v for k, v in state.items() if not k.startswith("contrast.")}
    with pytest.raises(CheckpointError, match="contrast"):
        tone.read_trees(partial, "partial")


def test_other_features_say_how_to_refit() -> None:
    """Trees that read another number of features name the command that refits them."""
    from sklearn.ensemble import HistGradientBoostingRegressor

    from tir_env.quality_trees import from_sklearn

    x, y = np.random.default_rng(0).random((50, 5)), np.arange(50.0)
    small = from_sklearn(HistGradientBoostingRegressor(max_iter=3).fit(x, y))
    with pytest.raises(CheckpointError, match="train_tone_dehaze"):
        tone.read_trees(tone.tensors_of({"mean": small, "contrast": small}), "small")


def test_missing_file_is_unavailable(tmp_path: Path) -> None:
    """Without its file the tool says where it looked."""
    with weights_folder(tmp_path):
        assert "weights not found" in (tone.ToneDehaze.availability() or "")


def test_plans_name_it_by_tool(registered: tone.ToneDehaze) -> None:
    """``learned=tone_dehaze`` plans it for dehazing, where the env offers it, and only there."""
    assert learned_tool(tone.NAME) == tone.NAME
    assert plan_tool("dehazing", ("dark_channel_prior", tone.NAME), (tone.NAME,)) == tone.NAME
    assert plan_tool("dehazing", ("dark_channel_prior",), (tone.NAME,)) == "dark_channel_prior"
    assert plan_tool("denoising", ("dct_denoise", tone.NAME), (tone.NAME,)) == "dct_denoise"


def test_an_unknown_entry_is_named() -> None:
    """An entry that is neither a task nor a learned tool lists what it may be."""
    with pytest.raises(ConfigValueError, match="tasks are"):
        learned_tool("dehazer_of_dreams")


def test_haze_threshold_moves_the_plan() -> None:
    """``haze_threshold`` replaces perception's threshold for haze only."""
    import gymnasium as gym

    from agents.baselines import perceived_tasks
    from tir_env import perception

    if not perception.available():
        pytest.skip("perception weights missing")
    env = gym.make("TIR-v0", images="test", combos="mio-a").unwrapped
    env.reset(seed=0, options={"degradations": ["noise"]})
    low = perceived_tasks(env, {"haze": 0.0})
    high = perceived_tasks(env, {"haze": 1.01})
    assert low is not None and high is not None
    assert "dehazing" in low and "dehazing" not in high
    assert [t for t in low if t != "dehazing"] == high


def test_haze_head_reads_haze(registered: tone.ToneDehaze) -> None:
    """The haze head gives a probability, higher on a hazed crop than on its clean one."""
    gen = torch.Generator().manual_seed(5)
    clean = torch.rand(3, 24, 24, generator=gen) ** 1.5
    p_clean = registered.haze_probability(clean, 0.5)
    p_hazy = registered.haze_probability(hazy(clean, 0.4), 0.5)
    assert 0.0 <= p_clean <= 1.0 and 0.0 <= p_hazy <= 1.0
    assert p_hazy > p_clean


def test_a_file_without_the_haze_head_says_how_to_fit_it(tmp_path: Path) -> None:
    """Trees fitted without ``--haze-head`` dehaze, but refuse to read haze, naming the flag."""
    heads = {h: t for h, t in fitted_heads(120).items() if h != tone.HAZE_HEAD}
    save_state(tone.tensors_of(heads), tmp_path / f"{tone.NAME}.safetensors", {"test": 1})
    with weights_folder(tmp_path):
        tool = tone.ToneDehaze()
        assert tool(torch.rand(1, 3, 8, 8)).shape == (1, 3, 8, 8)
        with pytest.raises(CheckpointError, match="--haze-head"):
            tool.haze_probability(torch.rand(3, 8, 8), 0.5)


class _Reader:
    """A stand-in haze head that reads every image at one probability."""

    def __init__(self, p: float) -> None:
        self.p = p

    def haze_probability(self, image: torch.Tensor, perceived_haze: float) -> float:
        return self.p


def test_tone_reader_decides_haze_alone() -> None:
    """``tone_read_tasks`` plans dehazing by the reader's probability, the rest as perception."""
    import gymnasium as gym

    from agents.baselines import perceived_tasks, tone_read_tasks
    from tir_env import perception

    if not perception.available():
        pytest.skip("perception weights missing")
    env = gym.make("TIR-v0", images="test", combos="mio-a").unwrapped
    env.reset(seed=1, options={"degradations": ["low_resolution", "noise"]})
    plain = perceived_tasks(env, {"haze": 1.01})
    sure = tone_read_tasks(env, 0.5, _Reader(0.9))
    never = tone_read_tasks(env, 0.5, _Reader(0.1))
    assert plain is not None and sure is not None and never is not None
    assert "dehazing" in sure and "dehazing" not in never
    assert never == plain


def test_train_refuses_before_any_work(tmp_path: Path) -> None:
    """An existing output or a non-safetensors path stops the fit before it starts."""
    from benchmarks import train_tone_dehaze

    taken = tmp_path / "tone_dehaze.safetensors"
    taken.write_bytes(b"keep me")
    with pytest.raises(SystemExit):
        train_tone_dehaze.main(["--out", str(taken)])
    assert taken.read_bytes() == b"keep me"
    with pytest.raises(SystemExit):
        train_tone_dehaze.main(["--out", str(tmp_path / "trees.pt")])


def test_the_change_follows_the_batch_device() -> None:
    """The predicted change (numpy, on the CPU) is moved to the batch's device before use."""
    batch = torch.empty(2, 3, 8, 8, device="meta")
    change = torch.zeros(2, dtype=torch.float64)
    assert tone.apply_change(batch, change, change).device == batch.device


@pytest.mark.parametrize("shape", [(1, 3_000_000), (2047, 2049), (3, 1_000_000), (1, 1 << 20)])
def test_thin_keeps_the_read_limit_on_any_shape(shape: tuple[int, int]) -> None:
    """A long strip or a size just under a square of the limit is thinned within it too."""
    image = np.broadcast_to(np.zeros((1, 1, 1), np.float32), (3, *shape))
    thin = tone._thin(image)
    assert thin.shape[1] * thin.shape[2] <= tone.MAX_READ_PIXELS


def _tampered(trees_folder: Path, head: str, change: str) -> dict[str, torch.Tensor]:
    """The saved arrays with ``head``'s changed as ``change`` names."""
    state = dict(load_state(trees_folder / f"{tone.NAME}.safetensors"))
    leaf = state[f"{head}.leaf"].bool()
    key = {"loop": "left", "float": "feature", "baseline": "baseline"}
    name = f"{head}.{key.get(change, 'feature' if 'feature' in change else 'value')}"
    array = state[name].clone()
    if change == "feature":
        array[~leaf] = tone.N_FEATURES + 7
    elif change == "leaf feature":  # predict gathers every node's feature, leaves' too
        array[leaf] = tone.N_FEATURES + 7
    elif change == "loop":
        array[~leaf] = torch.arange(len(array))[~leaf]
    elif change == "float":
        array = array.to(torch.float64)
    elif change == "baseline":
        array = array[:0]
    else:
        array[leaf] = float("nan")
    state[name] = array
    return state


@pytest.mark.parametrize("change", ["feature", "leaf feature", "loop", "float", "baseline", "nan"])
@pytest.mark.parametrize("head", ["mean", "haze"])
def test_broken_trees_are_refused_on_reading(trees_folder: Path, head: str, change: str) -> None:
    """Trees that would index outside a row, loop forever or predict NaN are named, not run."""
    with pytest.raises(CheckpointError, match=rf"\({head}\).*train_tone_dehaze"):
        tone.read_trees(_tampered(trees_folder, head, change), "tampered")


def test_a_missing_head_says_how_to_refit(trees_folder: Path) -> None:
    """A file without the mean trees names the command that makes them."""
    state = load_state(trees_folder / f"{tone.NAME}.safetensors")
    partial = {k: v for k, v in state.items() if not k.startswith("mean.")}
    with pytest.raises(CheckpointError, match="'mean'.*train_tone_dehaze"):
        tone.read_trees(partial, "partial")


def test_an_unreadable_or_missing_file_says_how_to_fit_it(tmp_path: Path) -> None:
    """A corrupt file and a missing one name the trees' own command, not ``tir train-tools``."""
    from tir_env.errors import WeightsNotFoundError

    with weights_folder(tmp_path):
        with pytest.raises(WeightsNotFoundError, match="train_tone_dehaze"):
            tone.ToneDehaze().heads()
        (tmp_path / f"{tone.NAME}.safetensors").write_bytes(b"\x00not safetensors" * 8)
        with pytest.raises(CheckpointError, match="train_tone_dehaze"):
            tone.ToneDehaze()(torch.rand(1, 3, 8, 8))


class _Recorder:
    """A stand-in haze head that keeps the image it was shown."""

    def __init__(self) -> None:
        self.seen: list[torch.Tensor] = []

    def haze_probability(self, image: torch.Tensor, perceived_haze: float) -> float:
        self.seen.append(image)
        return 0.0


def test_tone_reading_upsamples_as_the_fit_did() -> None:
    """A low-resolution input reaches the haze head upsampled as the trees' examples were."""
    from agents.baselines import tone_read_tasks
    from tir_env import perception
    from tir_env.images import u8_to_batch
    from tir_env.tools.learned.tone import at_size as to_size

    if not perception.available():
        pytest.skip("perception weights missing")
    image = (np.random.default_rng(0).random((24, 40, 3)) * 255).astype(np.uint8)

    class Env:
        def perception_input(self) -> tuple[np.ndarray, tuple[int, int]]:
            return image, (96, 160)

    reader = _Recorder()
    assert tone_read_tasks(Env(), 0.5, reader) is not None
    assert torch.equal(reader.seen[0], to_size(u8_to_batch(image), (96, 160))[0])


def test_the_tone_tool_unregistered_says_how_to_fit_it() -> None:
    """``learned=tone_dehaze`` without its trees names the command, not an unknown name."""
    if tone.NAME in TOOLS:
        pytest.skip("the tone_dehaze trees are in this weights folder")
    with pytest.raises(ConfigValueError, match="train_tone_dehaze"):
        learned_tool(tone.NAME)


def test_tasks_still_name_their_learned_tool(registered: tone.ToneDehaze) -> None:
    """With ``tone_dehaze`` registered, a task entry still names ``learned_<task>``."""
    from tir_env.tools import tool_names

    if "learned_dehazing" not in tool_names():
        pytest.skip("learned_dehazing weights missing")
    assert learned_tool("dehazing") == "learned_dehazing"
    tools = ("dark_channel_prior", "learned_dehazing", tone.NAME)
    assert plan_tool("dehazing", tools, ("dehazing",)) == "learned_dehazing"
    assert plan_tool("dehazing", tools, (tone.NAME, "dehazing")) == tone.NAME
    assert plan_tool("dehazing", tools[:2], (tone.NAME, "dehazing")) == "learned_dehazing"
    assert plan_tool("dehazing", tools, ()) == "dark_channel_prior"


@pytest.mark.parametrize(
    "options",
    [
        {"haze_threshold": -0.1},
        {"haze_threshold": 1.5},
        {"sight": "suite-reader", "haze_threshold": 0.5},
    ],
)
def test_fixed_refuses_haze_options_it_would_ignore(options: dict[str, object]) -> None:
    """A threshold outside [0, 1], or haze options the suites' readers would ignore: refused."""
    from agents.baselines import FixedPipelineAgent

    with pytest.raises(ConfigValueError, match="haze"):
        FixedPipelineAgent(**options)


def test_type_heads_score_f1_at_the_val_threshold() -> None:
    """F1 counts no true negatives; the test F1 is read at the threshold best on val."""
    from benchmarks.type_heads import f1_at, scored

    y = np.array([True, True, False, False])
    assert f1_at(y, np.array([0.9, 0.1, 0.1, 0.1]), 0.5) == pytest.approx(2 / 3)
    assert f1_at(y, np.array([0.9, 0.9, 0.9, 0.9]), 0.5) == pytest.approx(2 / 3)
    val = np.array([0.9, 0.8, 0.3, 0.2])
    test = np.array([0.9, 0.4, 0.5, 0.1])  # best on test alone would be 0.85, not val's
    out = scored({"val": y, "test": y}, {"val": val, "test": test})
    assert 0.3 < out["threshold"] <= 0.8 and out["f1_val"] == pytest.approx(1.0)
    assert out["f1_test"] == pytest.approx(f1_at(y, test, out["threshold"]))
