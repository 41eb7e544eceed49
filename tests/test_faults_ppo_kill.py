"""``tir train ppo`` killed (SIGKILL, no cleanup) at chosen moments, then resumed (issue 15).

Each run is a real process that kills itself at a deterministic point: in the middle of a
rollout, while a checkpoint zip is half written, while ``final.zip`` is half written, while
the exported policy is half written, and during the perception pretraining (before any
checkpoint). After each kill: a rerun without ``--resume`` refuses, and ``--resume`` continues
from the last complete checkpoint to the end, with a learning curve that lists every step
once.

Each docstring is one line, ``<input or fault> | <behaviour>`` (docs/reliability.md is made
from them).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tir_env.errors import RunExistsError

ROOT = Path(__file__).resolve().parents[1]

TINY = [
    "--n-envs", "2", "--n-steps", "32", "--batch-size", "32", "--n-epochs", "1",
    "--patch-size", "32", "--obs-size", "32", "--max-steps", "2", "--history-len", "2",
    "--channels", "8", "--history-dim", "8", "--net-arch", "8",
    "--checkpoint-every", "64", "--no-verbose", "--pool-workers", "1",
    "--perception-samples", "8", "--perception-epochs", "1",
]  # fmt: skip
TOTAL = 192  # three rollouts of 64 steps; checkpoints at 64, 128, 192

#: Runs ``agents.ppo.train.main(argv)`` and SIGKILLs itself at ``POINT`` (argv[1]).
DRIVER = r"""
import os, signal, sys
from pathlib import Path

point, argv = sys.argv[1], sys.argv[2:]


def die():
    os.kill(os.getpid(), signal.SIGKILL)


def half(path):  # a write cut short: the file holds its first half
    data = Path(path).read_bytes()
    Path(path).write_bytes(data[: len(data) // 2])


from stable_baselines3 import PPO

import agents.ppo.train as train
from agents.ppo.vec_env import TIRSB3VecEnv

kind, _, arg = point.partition(":")
if kind == "save":  # SB3 writes the temp file of `arg` (ppo_128_steps, final), then dies
    save = PPO.save

    def killed_save(self, path, *args, **kwargs):
        save(self, path, *args, **kwargs)
        if Path(path).name.startswith(f".{arg}."):
            half(path)
            die()

    PPO.save = killed_save
elif kind == "step":  # dies before env step `arg` (counted over all envs)
    step_wait, done = TIRSB3VecEnv.step_wait, [0]

    def killed_step(self):
        done[0] += self.num_envs
        if done[0] > int(arg):
            die()
        return step_wait(self)

    TIRSB3VecEnv.step_wait = killed_step
elif kind == "export":  # the exported policy's tensors are half written
    import safetensors.torch as st

    save_model = st.save_model

    def killed_export(model, filename, *args, **kwargs):
        save_model(model, filename, *args, **kwargs)
        half(filename)
        die()

    st.save_model = killed_export
elif kind == "perception":  # a new run dies before its first checkpoint
    train.pretrain_perception = lambda *args, **kwargs: die()
train.main(argv)
sys.exit(3)  # not killed: the point was never reached
"""

#: kill point -> the checkpoint step the resume must start from (0: none, a fresh start).
POINTS = {
    "save:ppo_128_steps": 64,  # the 128 checkpoint is half written; logs reached 128
    "step:96": 64,  # mid-rollout: the checkpoint at 64 is the last one
    "save:final": 192,  # every checkpoint written, final.zip half written
    "export": 192,  # final.zip written, the exported policy half written
    "perception": 0,  # killed before any checkpoint
}
#: A real process per point takes about a minute on a shared 2-core machine: the checkpoint
#: write runs by default, the other points in the slow tier.
CASES = [
    pytest.param(point, marks=() if i == 0 else pytest.mark.slow) for i, point in enumerate(POINTS)
]


def _argv(out: Path) -> list[str]:
    return ["--out", str(out), "--total-timesteps", str(TOTAL), "--export", str(out / "pi"), *TINY]


def _killed_run(out: Path, point: str, tmp_path: Path) -> None:
    driver = tmp_path / "driver.py"
    driver.write_text(DRIVER)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, str(driver), point, *_argv(out)],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-3000:]


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def _cut_row(log: Path) -> str:
    """The log's first row cut inside its step count, as a kill mid-append leaves it."""
    header, row = log.read_text().splitlines()[:2]
    column = header.split(",").index("time/total_timesteps")
    fields = row.split(",")
    return ",".join([*fields[:column], fields[column][:1]])  # "6" of "64"


@pytest.mark.parametrize("point", CASES)
def test_ppo_run_killed_resumes_from_the_last_complete_checkpoint(point: str, tmp_path: Path):
    """tir train ppo SIGKILLed mid-checkpoint write (slow tier: mid-rollout, mid final.zip, mid export, before any checkpoint), its last log row cut short | a rerun without --resume refuses (RunExistsError, nothing touched); --resume continues from the last complete checkpoint to the end; the learning curve lists every step once, without the cut row"""  # noqa: E501
    from agents.ppo.policy import load_policy
    from agents.ppo.train import checkpoint_problem, main
    from benchmarks.ppo_curve import read_curve

    out = tmp_path / "run"
    _killed_run(out, point, tmp_path)

    before = _snapshot(out)
    with pytest.raises(RunExistsError, match="--resume"):
        main(_argv(out))
    assert _snapshot(out) == before

    log = out / "logs" / "progress_00000000.csv"
    if log.is_file():  # a kill mid-append would leave a row like this one
        log.write_text(log.read_text() + _cut_row(log))
    model = main([*_argv(out), "--resume"])
    assert model.num_timesteps == TOTAL
    start = POINTS[point]
    segments = sorted(p.name for p in (out / "logs").glob("progress_*.csv"))
    assert segments[-1] == f"progress_{start:08d}.csv"  # resumed at the last good checkpoint
    steps = [row["timesteps"] for row in read_curve(out)]
    assert steps == [64, 128, 192]
    for path in (out / "checkpoints").glob("ppo_*_steps.zip"):
        assert checkpoint_problem(path) is None, path
    assert checkpoint_problem(out / "final.zip") is None
    assert load_policy(out / "pi")[1].extra["num_timesteps"] == TOTAL
