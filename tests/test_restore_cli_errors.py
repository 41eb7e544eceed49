"""``tir restore``'s refusals and interruptions: usage errors, agents, outputs, Ctrl-C.

No model runs: what would load one is replaced by a stub that fails the test if reached too
early, or by a stand-in that raises ``KeyboardInterrupt`` where Ctrl-C would land.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

import tir_env.data  # noqa: F401  # bound to the real load_image before a test patches it
from benchmarks.cli import main
from benchmarks.commands import restore
from tir_env.errors import ConfigError, OutputPathError
from tir_env.images import save_image


def _photo(path: Path, seed: int = 0) -> Path:
    """A 64x48 noise photo saved at ``path``."""
    rng = np.random.default_rng(seed)
    return save_image(path, rng.integers(0, 256, (48, 64, 3), dtype=np.uint8))


def _too_late(*args: Any, **kwargs: Any) -> Any:
    raise AssertionError("reached the expensive work before the refusal")


def _no_models(monkeypatch: pytest.MonkeyPatch) -> None:
    """Stand-ins for the agent, the env and perception (nothing loads)."""
    monkeypatch.setattr("agents.base.make_agent", lambda name, **options: object())
    monkeypatch.setattr("tir_env.env.TIREnv", lambda **kwargs: object())
    monkeypatch.setattr("benchmarks.evaluate.with_required_tools", lambda kwargs, agent: kwargs)
    monkeypatch.setattr(restore, "perception_line", lambda image: "perceived: (stub)")


@pytest.mark.parametrize("steps", ["0", "-2"])
def test_restore_max_steps_below_one_is_a_usage_error(tmp_path, capsys, steps):
    """tir restore --max-steps 0 (or negative) | exit 2: --max-steps must be >= 1, no traceback"""
    photo, out = _photo(tmp_path / "in.png"), tmp_path / "out.png"
    assert main(["restore", str(photo), "--max-steps", steps, "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert err == f"error: --max-steps must be >= 1, got {steps}\n"
    assert not out.exists()


@pytest.mark.parametrize(
    ("agent", "needs"),
    [("oracle", "true degradations"), ("exhaustive-ref", "clean reference")],
)
def test_restore_refuses_agents_needing_the_truth_before_any_work(
    tmp_path, capsys, monkeypatch, agent, needs
):
    """tir restore --agent oracle / exhaustive-ref | exit 2 naming what is missing, before checkpoints, photo or models"""  # noqa: E501
    monkeypatch.setattr(restore, "register_checkpoints", _too_late)
    monkeypatch.setattr("agents.base.make_agent", _too_late)
    monkeypatch.setattr("tir_env.images.load_image", _too_late)
    monkeypatch.setattr(restore, "perception_line", _too_late)
    photo, out = _photo(tmp_path / "photo.png"), tmp_path / "o.png"
    assert main(["restore", str(photo), "--agent", agent, "-o", str(out)]) == 2
    out_text, err = capsys.readouterr()
    assert err.startswith(f"error: agent {agent!r}") and needs in err and "--agent fixed" in err
    assert out_text == "" and not out.exists()


def test_refuse_agent_lets_no_reference_agents_through():
    """refuse_agent on fixed, exhaustive, greedy | nothing raised; on oracle | ConfigError"""
    for name in ("fixed", "exhaustive", "greedy"):
        restore.refuse_agent(name)
    with pytest.raises(ConfigError, match="true degradations"):
        restore.refuse_agent("oracle")


def test_restore_agent_arg_for_another_agent_names_the_agent_flag(tmp_path, capsys):
    """tir restore --agent-arg exhaustive.metric=psnr (agent fixed) | exit 2 naming --agent, not --agents"""  # noqa: E501
    photo, out = _photo(tmp_path / "in.png"), tmp_path / "o.png"
    words = ["restore", str(photo), "--agent-arg", "exhaustive.metric=psnr", "-o", str(out)]
    assert main(words) == 2
    err = capsys.readouterr().err
    assert "--agent is 'fixed'" in err and "--agents" not in err and not out.exists()


def test_restore_agent_options_keep_the_agents_own_and_shared_items():
    """restore_agent_options: AGENT.KEY=VALUE for --agent and KEY=VALUE | typed options"""
    default = {"whole_adds": ("dark",)}  # tir restore's own (rule d2277f4)
    assert restore.restore_agent_options(["fixed.seed=3"], "fixed") == {**default, "seed": 3}
    assert restore.restore_agent_options(["seed=4"], "fixed") == {**default, "seed": 4}


@pytest.mark.parametrize("suffix", [".png", ".jpg"])
def test_restore_into_an_existing_folder_suggests_the_photo_name(tmp_path, capsys, suffix):
    """tir restore small.png -o out (an existing folder) | exit 2 suggesting out/small.png"""
    photo = _photo(tmp_path / f"small{suffix}")
    folder = tmp_path / "out"
    folder.mkdir()
    assert main(["restore", str(photo), "-o", str(folder)]) == 2
    err = capsys.readouterr().err
    assert f"e.g. {folder / 'small.png'}" in err and not any(folder.iterdir())


def test_one_output_with_a_trailing_slash_suggests_the_photo_name(tmp_path):
    """restore_jobs(small.png, -o new/) | OutputPathError suggesting new/small.png"""
    photo = _photo(tmp_path / "small.png")
    with pytest.raises(OutputPathError, match="small.png"):
        restore.restore_jobs([str(photo)], f"{tmp_path / 'new'}/", overwrite=False)


def test_ctrl_c_on_one_photo_exits_130_writing_nothing(tmp_path, capsys, monkeypatch):
    """Ctrl-C during the agent's rollout on one photo | exit 130, one line: the output was not written"""  # noqa: E501
    _no_models(monkeypatch)

    def interrupted(*args: Any, **kwargs: Any) -> Any:
        raise KeyboardInterrupt

    monkeypatch.setattr("agents.base.rollout", interrupted)
    photo, out = _photo(tmp_path / "in.png"), tmp_path / "o.png"
    assert main(["restore", str(photo), "-o", str(out)]) == 130
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith("interrupted (Ctrl-C)") and f"{out} not written" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.png"]


def test_ctrl_c_in_a_folder_run_says_what_was_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C while writing the 2nd of 3 results | exit 130; the 1st kept whole, no partial file, the rest named"""  # noqa: E501
    _no_models(monkeypatch)
    photos = tmp_path / "photos"
    for i, name in enumerate(("a", "b", "c")):
        _photo(photos / f"{name}.png", seed=i)
    calls: list[Path] = []

    def restore_one(
        env: Any,
        agent: Any,
        photo: Path,
        output: Path,
        config: Any,
        *,
        legend: bool = True,
        written: list[Path] | None = None,
    ) -> int:
        assert written is not None  # restore_many passes its list along
        calls.append(photo)
        if len(calls) == 2:  # Ctrl-C inside the write: the atomic save leaves nothing
            monkeypatch.setattr("PIL.Image.Image.save", _partial_save)
        written.append(save_image(output, np.zeros((48, 64, 3), np.uint8)))
        return 0

    monkeypatch.setattr(restore, "restore_one", restore_one)
    out = tmp_path / "res"
    assert main(["restore", str(photos), "-o", str(out)]) == 130
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert "wrote 1 of 3 results" in err and "not written: b.png, c.png" in err
    assert sorted(p.name for p in out.iterdir()) == ["a.png"]  # no hidden temporary file


def _partial_save(self: Any, fp: Any, *args: Any, **kwargs: Any) -> None:
    """Half a file, then Ctrl-C."""
    Path(fp).write_bytes(b"\x89PNG half")
    raise KeyboardInterrupt


def test_interrupted_line_before_any_job_is_known():
    """Ctrl-C before the inputs are checked | nothing written"""
    assert "nothing written" in restore.RestoreProgress().interrupted()


def test_interrupted_line_names_a_strip_not_written(tmp_path: Path) -> None:
    """Ctrl-C after a result, before its --before-after strip | the line says the strip is missing"""  # noqa: E501
    out = tmp_path / "o.png"
    progress = restore.RestoreProgress(jobs=[(tmp_path / "in.png", out)], strips=True)
    progress.written.append(out)
    line = progress.interrupted()
    assert f"wrote {out}" in line and "before/after strip not written" in line
    progress.written.append(tmp_path / "o_before_after.png")
    assert "strip" not in progress.interrupted()


def test_interrupted_line_counts_strips_of_a_folder(tmp_path: Path) -> None:
    """Ctrl-C in a folder run with --before-after | results and strips counted apart"""
    jobs = [(tmp_path / f"{n}.png", tmp_path / "res" / f"{n}.png") for n in "abc"]
    progress = restore.RestoreProgress(jobs=jobs, strips=True)
    progress.written += [jobs[0][1], tmp_path / "res" / "a_before_after.png", jobs[1][1]]
    line = progress.interrupted()
    assert "wrote 2 of 3 results" in line and "(1 with their before/after strip)" in line
    assert "not written: c.png" in line


def test_before_after_strip_lines_up_the_photo_and_its_result() -> None:
    from benchmarks.restore import STRIP_GAP, before_after
    from tir_env.types import ToolCall

    photo = np.zeros((40, 60, 3), np.uint8)
    bigger = np.full((160, 240, 3), 255, np.uint8)  # an upscaled result
    strip = before_after(photo, bigger, [ToolCall("bicubic_x4")])
    assert strip.dtype == np.uint8 and strip.shape[1] == 2 * 60 + STRIP_GAP
    assert strip.shape[0] > 40  # the label band above the halves


def test_restore_before_after_writes_the_strip_and_keeps_an_existing_one(tmp_path, capsys):
    from benchmarks.cli import main
    from tir_env.images import load_image, save_image

    rng = np.random.default_rng(0)
    photo = save_image(tmp_path / "p.png", rng.integers(0, 256, (40, 48, 3), dtype=np.uint8))
    out = tmp_path / "r.png"
    args = ["restore", str(photo), "-o", str(out), "--max-steps", "1", "--before-after"]
    assert main(args) == 0
    strip = tmp_path / "r_before_after.png"
    assert strip.is_file() and load_image(strip).shape[1] > 2 * 48
    assert main([*args, "--overwrite"]) == 0
    before = strip.stat().st_mtime_ns
    out.unlink()
    assert main(args) == 0  # the result is written; the existing strip is kept, and said
    assert strip.stat().st_mtime_ns == before and "exists, not replaced" in capsys.readouterr().out


def test_before_after_never_lands_on_an_input_even_with_overwrite(tmp_path, capsys):
    from benchmarks.cli import main

    rng = np.random.default_rng(1)
    photo = save_image(tmp_path / "x_before_after.png", rng.integers(0, 256, (40, 48, 3), np.uint8))
    kept = photo.read_bytes()
    args = ["restore", str(photo), "-o", str(tmp_path / "x.png"), "--overwrite", "--before-after"]
    assert main(args) == 2
    assert photo.read_bytes() == kept and not (tmp_path / "x.png").exists()
    assert "--before-after" in capsys.readouterr().err


def test_before_after_never_lands_on_another_photos_result(tmp_path, capsys):
    from benchmarks.cli import main

    rng = np.random.default_rng(2)
    folder = tmp_path / "photos"
    for name in ("a.png", "a_before_after.png"):
        save_image(folder / name, rng.integers(0, 256, (40, 48, 3), np.uint8))
    out = tmp_path / "out"
    assert main(["restore", str(folder), "-o", str(out), "--before-after"]) == 2
    assert "also the result of another photo" in capsys.readouterr().err
    assert not out.exists() or not any(out.iterdir())  # refused before any work


@pytest.mark.parametrize(("flag", "single"), [([], False), (["--fast"], True)])
def test_restore_fast_runs_the_learned_networks_once(tmp_path, monkeypatch, capsys, flag, single):
    """--fast | the whole run is inside flips.single_pass; without it, the specs' flips hold"""
    from tir_env.tools.learned import flips

    seen: list[str] = []

    def run(config: Any, progress: Any) -> int:
        seen.append(flips.mode_for("learned_deraining", "hv", coords=False))
        return 0

    monkeypatch.delenv(flips.ENV, raising=False)
    monkeypatch.setattr(restore, "run_restore", run)
    photo = _photo(tmp_path / "in.png")
    assert main(["restore", str(photo), "-o", str(tmp_path / "o.png"), *flag]) == 0
    assert seen == ["" if single else "hv"]
    assert flips.mode_for("learned_deraining", "hv", coords=False) == "hv"  # the block ended
    assert ("once per call" in capsys.readouterr().out) == single  # the user is told
