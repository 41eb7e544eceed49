"""The ``tir`` command line: every subcommand's options come from its typed config (issue 18)."""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from benchmarks import evaluate
from benchmarks.cli import FILLED_BY_TIR, build_parser, main, parse_command
from benchmarks.commands import bench
from benchmarks.commands.configs import (
    AgentsConfig,
    BenchConfig,
    DemoConfig,
    ExpertsConfig,
    LeaderboardConfig,
    PhotosConfig,
    RestoreConfig,
    SuitesConfig,
    ToolsConfig,
    TrainRecipeConfig,
    TrainToolsConfig,
    WeightsConfig,
)
from benchmarks.throughput import SpeedConfig
from tir_env.config_cli import CONFIG_KEY, field_docs
from tir_env.errors import ConfigValueError, UnknownConfigFieldError
from tir_env.help_text import plain_text

ROOT = Path(__file__).resolve().parents[1]

#: ``tir`` words (the flags the docs and tests use) -> the config they must give.
CASES: list[tuple[list[str], Any]] = [
    (["demo"], DemoConfig()),
    (
        ["demo", "--out", "o", "--agents", "random,fixed", "--seeds", "2", "--patch-size", "32",
         "--max-steps", "2"],
        DemoConfig(out="o", agents=("random", "fixed"), seeds=2, patch_size=32, max_steps=2),
    ),
    (["bench", "mio-a"], BenchConfig(suite="mio-a")),
    (
        ["bench", "mio-a", "--agents", "ppo,ppo-bc", "--agent-arg", "ppo-bc.weights=runs/x",
         "--agent-arg", "seed=2", "--images", "DIR", "--limit", "3", "--whole", "--out", "o",
         "--save-images", "--strict", "--toolbox", "full", "--depth", "folder:D",
         "--depth-missing", "proxy", "--depth-cache", "C", "--register", "a.pth:denoise:n",
         "--register", "b.pth:deblur", "--config", "t.toml"],
        BenchConfig(
            suite="mio-a", agents=("ppo", "ppo-bc"), agent_arg=("ppo-bc.weights=runs/x", "seed=2"),
            images="DIR", limit=3, whole=True, out="o", save_images=True, strict=True,
            toolbox="full", depth="folder:D", depth_missing="proxy", depth_cache="C",
            register=("a.pth:denoise:n", "b.pth:deblur"), config=("t.toml",),
        ),
    ),
    (
        ["bench", "--agents", "random", "mio-b", "--patch-size", "64", "--pairs", "P"],
        BenchConfig(suite="mio-b", agents=("random",), patch_size=64, pairs="P"),
    ),
    (["leaderboard", "runs/x"], LeaderboardConfig(dir="runs/x")),
    (["leaderboard", "runs/x", "--out", "o"], LeaderboardConfig(dir="runs/x", out="o")),
    (["restore", "p.jpg"], RestoreConfig(images=("p.jpg",))),
    (
        ["restore", "p.jpg", "--agent", "greedy", "-o", "out.png", "--overwrite", "--max-steps",
         "2", "--max-side", "512", "--toolbox", "learned", "--config", "t.toml"],
        RestoreConfig(
            images=("p.jpg",), agent="greedy", output="out.png", overwrite=True, max_steps=2,
            max_side=512, toolbox="learned", config=("t.toml",),
        ),
    ),
    (["restore", "p.jpg", "--output", "o.webp"], RestoreConfig(images=("p.jpg",), output="o.webp")),
    # several photos; a comma is part of a file name, not a separator
    (
        ["restore", "a,b.jpg", "dir", "-o", "out"],
        RestoreConfig(images=("a,b.jpg", "dir"), output="out"),
    ),
    (["tools"], ToolsConfig()),
    (["tools", "--preset", "agenticir", "--register", "a:b"],
     ToolsConfig(preset="agenticir", register=("a:b",))),
    (["data", "photos"], PhotosConfig()),
    (
        ["data", "photos", "--out", "o", "--debs", "d", "--only-python", "--force", "--verify"],
        PhotosConfig(out="o", debs="d", only_python=True, force=True, verify=True),
    ),
    (["weights", "list"], WeightsConfig(action="list")),
    (
        ["weights", "fetch", "clip_rn50", "musiq_koniq", "--accept-noncommercial",
         "--weights-dir", "w", "--manifest", "m", "--base-url", "http://x", "--offline",
         "--timeout", "5", "--deadline", "9", "--retries", "1", "--no-progress"],
        WeightsConfig(
            action="fetch", names=("clip_rn50", "musiq_koniq"), accept_noncommercial=True,
            weights_dir="w", manifest="m", base_url="http://x", offline=True, timeout=5.0,
            deadline=9.0, retries=1, progress=False,
        ),
    ),
    (["weights", "fetch", "--toolbox", "agenticir"],
     WeightsConfig(action="fetch", toolbox="agenticir")),
    (["weights", "verify", "a"], WeightsConfig(action="verify", names=("a",))),
    (["speed"], SpeedConfig()),
    (
        ["speed", "--devices", "cpu", "--envs", "1", "4", "--size", "32", "--batch", "4",
         "--sub-steps", "8", "--repeats", "1", "--toolbox", "classical", "--reward", "adaptive",
         "--rewards", "psnr", "--no-tools", "--threads", "2", "--out-json", "", "--out-md", ""],
        SpeedConfig(
            devices=("cpu",), envs=(1, 4), size=32, batch=4, sub_steps=8, repeats=1,
            toolbox="classical", reward="adaptive", rewards=("psnr",), tools=False, threads=2,
            out_json="", out_md="",
        ),
    ),
    (["speed", "--envs", "1,16"], SpeedConfig(envs=(1, 16))),
    (["suites"], SuitesConfig()),
    (["agents"], AgentsConfig()),
    (["agents", "--options"], AgentsConfig(options=True)),
    (["train", "ppo", "--total-timesteps", "5", "--resume"],
     TrainRecipeConfig(algo="ppo", train_args=("--total-timesteps", "5", "--resume"))),
    (["train", "sft", "--help"], TrainRecipeConfig(algo="sft", train_args=("--help",))),
    (["train-tools", "--epochs", "1"], TrainToolsConfig(train_args=("--epochs", "1"))),
    (["experts", "collect", "--out", "x"],
     ExpertsConfig(action="collect", experts_args=("--out", "x"))),
]  # fmt: skip


@pytest.mark.parametrize(("words", "expected"), CASES, ids=[" ".join(w) for w, _ in CASES])
def test_documented_flags_give_the_expected_config(words: list[str], expected: Any) -> None:
    config, _ = parse_command(words)
    assert config == expected
    if "argv" in {f.name for f in dataclasses.fields(config)}:
        assert config.argv == tuple(words)  # recorded with the results


@pytest.mark.parametrize(
    "words",
    [
        ["bench"],  # no suite
        ["bench", "mio-a", "--whole", "--patch-size", "64"],  # exclusive
        ["bench", "mio-a", "--patch-size", "30"],  # not a multiple of 4
        ["bench", "mio-a", "--toolbox", "fancy"],  # not a preset
        ["restore", "p.jpg", "--max-steps", "many"],
        ["restore"],  # no photo
        ["weights", "delete"],
        ["train", "a2c"],
        ["speed", "--envs", "1,x"],
    ],
)
def test_malformed_options_exit_with_argparse_message(words: list[str]) -> None:
    with pytest.raises(SystemExit) as err:
        parse_command(words)
    assert err.value.code == 2


def _leaf_parsers(
    parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    """Every subcommand parser under ``parser`` that has no subcommands of its own."""
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        yield prefix, parser
    for action in subs:
        for name, child in action.choices.items():
            yield from _leaf_parsers(child, (*prefix, name))


LEAVES = list(_leaf_parsers(build_parser()))


def test_every_subcommand_is_walked() -> None:
    names = {" ".join(words) for words, _ in LEAVES}
    names_wanted = {
        "demo",
        "bench",
        "compare",
        "restore",
        "weights",
        "speed",
        "data photos",
        "data check",
        "agents",
    }
    assert names_wanted <= names
    assert len(LEAVES) == 15


@pytest.mark.parametrize(("words", "parser"), LEAVES, ids=[" ".join(w) for w, _ in LEAVES])
def test_every_subcommand_parser_is_built_from_a_dataclass(
    words: tuple[str, ...], parser: argparse.ArgumentParser
) -> None:
    cls = parser.get_default(CONFIG_KEY)
    assert isinstance(cls, type) and dataclasses.is_dataclass(cls), words
    assert cls.__dataclass_params__.frozen, f"{cls.__name__} is not frozen"  # type: ignore[attr-defined]
    fields = {f.name for f in dataclasses.fields(cls) if f.name not in FILLED_BY_TIR}
    dests = {a.dest for a in parser._actions if not isinstance(a, argparse._HelpAction)}
    assert dests == fields  # one argument per field, no hand-written extra
    docs = field_docs(cls)
    assert set(docs) >= fields, f"{cls.__name__}: fields without a doc: {fields - set(docs)}"
    text = parser.format_help()
    for name in fields:  # each field's doc (its first words) is in --help
        first = " ".join(plain_text(docs[name]).split()[:3])  # help shows the markup plain
        assert first in " ".join(text.split()), (words, name)


@pytest.mark.parametrize("words", [["bench"], ["restore"], ["weights"], ["speed"], ["demo"]])
def test_tir_help_shows_the_field_docs(
    words: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        main([*words, "--help"])
    out = " ".join(capsys.readouterr().out.split())
    expected = {
        "bench": "a re-run into it resumes",
        "restore": "Replace an existing output (never an input).",
        "weights": "Accept non-commercial licences.",
        "speed": "Timed repeats of the env and vector-env runs (the median is reported).",
        "demo": "Episodes per image and combination.",
    }
    assert expected[words[0]] in out


@pytest.fixture
def no_episodes(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Record each ``evaluate`` call's agent options instead of running episodes."""
    calls: list[dict[str, Any]] = []

    def fake(agent: str, *args: Any, agent_kwargs: Any = None, **kwargs: Any) -> list[Any]:
        calls.append({"agent": agent, **(agent_kwargs or {})})
        return []

    monkeypatch.setattr(evaluate, "evaluate", fake)
    return calls


@pytest.mark.parametrize(
    ("arg", "error"),
    [
        ("random.sed=3", "Did you mean 'seed'"),  # unknown key
        ("random.seed=three", "option 'seed'"),  # bad value for an int
        ("seed", "write AGENT.KEY=VALUE"),  # malformed
        ("randm.seed=3", "not in --agents"),  # an agent not run: would be ignored silently
        ("fixed.seed=1.5", "option 'seed'"),  # the second agent's option is checked too
    ],
)
def test_bad_agent_arg_is_a_named_error_before_any_episode(
    arg: str,
    error: str,
    tmp_path: Path,
    no_episodes: list[dict[str, Any]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    words = ["bench", "mio-a", "--agents", "random,fixed", "--limit", "1", "--out"]
    assert main([*words, str(tmp_path / "out"), "--agent-arg", arg]) == 2
    assert error in capsys.readouterr().err
    assert no_episodes == [] and not (tmp_path / "out").exists()


def test_agent_args_reach_each_agent_parsed_by_type(
    tmp_path: Path, no_episodes: list[dict[str, Any]]
) -> None:
    words = ["bench", "mio-a", "--agents", "random,greedy", "--limit", "1"]
    words += ["--out", str(tmp_path), "--agent-arg", "seed=3", "--agent-arg", "greedy.metric=niqe"]
    main(words)  # no records: the leaderboard step refuses (exit 2); the calls are what counts
    assert no_episodes == [
        {"agent": "random", "seed": 3},
        {"agent": "greedy", "seed": 3, "metric": "niqe"},
    ]


def test_agent_arg_errors_are_named() -> None:
    with pytest.raises(ConfigValueError):
        bench.split_agent_args(["novalue"])
    with pytest.raises(UnknownConfigFieldError):
        bench.parse_agent_args(["ppo.deterministic=false"], ["random"])
    assert bench.parse_agent_args(["ppo.deterministic=0"], ["ppo"]) == {
        "ppo": {"deterministic": False}
    }


def test_no_benchmarks_module_is_over_500_lines() -> None:
    counts = {
        str(p.relative_to(ROOT)): len(p.read_text(encoding="utf-8").splitlines())
        for p in [
            ROOT / "benchmarks" / "cli.py",
            *sorted((ROOT / "benchmarks" / "commands").glob("*.py")),
        ]
    }
    assert max(counts.values()) <= 500, counts
