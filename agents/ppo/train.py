"""Train the ``ppo`` agent: Stable-Baselines3 PPO on ``TIR-v0`` (``tir train ppo``).

One recipe, top to bottom in :func:`main`:

1. N envs share one tool pool through :class:`~agents.ppo.vec_env.TIRSB3VecEnv`, so each PPO
   step submits the N tool calls together. Actions (``--action-space``, :mod:`agents.ppo.actions`)
   are a catalogue of tool x parameter presets plus STOP (``catalogue``,
   :data:`agents.ppo.catalogue.PRESETS`), or the catalogue's tools with their first
   ``n_params`` parameters chosen from ``bins`` bins each (``params``); observations are the
   current and input images at ``obs_size`` and the history of the policy's own actions (no
   reward, no reference).
2. PPO with :class:`~agents.ppo.features.TIRFeatures` (CNN over both images, MLP over history).
3. Perception (new runs only): the CNN and a linear head first learn to name the degradations of
   patches drawn from the same photos and combinations (labels from the env, as the reward's
   clean image is); then they are frozen. From pixels and the PSNR reward alone, PPO settled on
   a safe near-no-op within 15k steps in this budget (docs/agents.md); with these features it
   learns which tool fits which degradation.
4. Logs: TensorBoard (``OUT/tb``), CSV (``OUT/logs/progress_<first step>.csv``, one per run
   segment) and stdout. Besides SB3's ``rollout/ep_rew_mean`` (return: PSNR gain minus step
   costs, in dB) it logs ``rollout/ep_psnr_gain_mean`` and ``rollout/ep_psnr_mean``.
5. A checkpoint (SB3 ``.zip``: policy, optimizer, step counter) every ``checkpoint_every`` steps,
   taken between PPO updates so no collected sample is lost, written atomically (temp +
   rename); ``--resume`` continues from the newest one that passes a zip check (one cut short
   is skipped with a warning) with the same step counter, optimizer state and learning-rate
   schedule.
6. At the end: ``OUT/final.zip`` and the deployable policy ``--export STEM`` (safetensors +
   JSON, what the ``ppo`` agent loads).

One folder, one run: a run without ``--resume`` refuses a folder that holds another run
(``config.json``, checkpoints or ``final.zip``), and ``--resume`` refuses a config that differs
from the folder's ``config.json`` except in :data:`RESUMABLE_FIELDS`; both refuse before
anything is written. A resumed segment moves the log segments past its starting step (written
after that checkpoint, by the interrupted segment) to ``OUT/logs/superseded/``.

Reward: ``psnr`` by default (per-step PSNR gain, RL-Restore), the evaluation metric itself; the
adaptive reward (``--reward adaptive``) mixes metrics whose scale and weights change during an
episode, a noisier signal for this small budget. Everything is seeded by ``--seed``; a resumed
segment seeds its envs with ``seed + steps so far``.

Example:
    tir train ppo --out runs/ppo --export agents/ppo/weights/ppo_mio_a
"""

from __future__ import annotations

import dataclasses
import json
import logging
import sys
import time
import warnings
import zipfile
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from stable_baselines3 import PPO
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.logger import (
    CSVOutputFormat,
    HumanOutputFormat,
    KVWriter,
    Logger,
    TensorBoardOutputFormat,
)
from stable_baselines3.common.utils import LinearSchedule
from stable_baselines3.common.vec_env import VecEnv, VecEnvWrapper, VecMonitor

from agents.ppo import perceived
from agents.ppo.actions import ActionSpaceKind, make_actions
from agents.ppo.bc import init_policy_kwargs, warm_start
from agents.ppo.catalogue import PRESETS, parse_with_catalogue
from agents.ppo.features import TIRFeatures, pretrain_perception
from agents.ppo.policy import PolicySpec, export_policy, last_checkpoint, load_spec
from agents.ppo.vec_env import TIRSB3VecEnv
from agents.tuned import ParamsChoice
from tir_env.env import TIREnv
from tir_env.errors import CheckpointError, ExpertDataError, RunMismatchError, SkippedWarning
from tir_env.files import atomic_path, refuse_used_folder, write_text_atomic
from tir_env.tools.pool import LocalToolPool, SyncToolPool
from tir_env.wrappers import policy_image

logger = logging.getLogger(__name__)

#: Config fields a ``--resume`` may change: they leave the trained samples' meaning alone.
RESUMABLE_FIELDS = frozenset(
    {"out", "total_timesteps", "resume", "export", "verbose", "threads", "device", "pool_workers"}
    | {"checkpoint_every"}
)


@dataclass(frozen=True)
class TrainConfig:
    """Everything that defines a PPO training run (defaults: the shipped policy's run).

    Attributes:
        out: Output folder (checkpoints, logs, final model); one run per folder (a folder that
            holds another run is refused: resume it or choose a new one).
        total_timesteps: Env steps in all (across resumed segments).
        resume: Continue from the newest good checkpoint in ``out/checkpoints`` if there is
            one (the config must match ``out/config.json`` but for RESUMABLE_FIELDS).
        export: Stem of the deployable policy written at the end (``None``: don't).
        init: Warm start (new runs): an exported policy stem, e.g. from ``tir train ppo-bc``;
            its weights, perception and feature settings replace the fresh policy's, and the
            perception pretraining is skipped.
        seed: Seed of the policy, PPO's sampling and the envs.
        action_space: ``catalogue`` (presets) or ``params`` (the catalogue's tools, each
            parameter chosen from bins; :mod:`agents.ppo.actions`).
        bins: Bins per parameter (``params``).
        n_params: Parameters chosen per tool (``params``; later ones keep their defaults).
        images: Clean photos: a bundled split or a folder.
        combos: Degradation combinations (a protocol name).
        patch_size: Side of the clean patches (the benchmark suites use 128).
        obs_size: Side of the observation images (128: full resolution for 128 px patches).
        max_steps: Tool calls per episode before truncation (the suites allow 5).
        history_len: Rows of the action history in the observation.
        reward: ``psnr``, ``static`` or ``adaptive``.
        step_cost: Subtracted from every tool call's reward (dB for ``psnr``): a price on work.
        reward_scale: Rewards are multiplied by this before PPO sees them (PSNR steps reach
            10 dB; a smaller scale keeps the value loss from drowning the shared extractor).
        n_envs: Parallel episodes sharing the tool pool.
        pool_workers: Threads of the shared tool pool.
        n_steps: Env steps per env between PPO updates.
        batch_size: Minibatch size of the PPO update.
        n_epochs: Passes over each rollout.
        learning_rate: Adam step size (linearly decayed to 10% by the end).
        gamma: Discount.
        gae_lambda: GAE lambda.
        clip_range: PPO clip range.
        ent_coef: Entropy bonus.
        vf_coef: Value-loss weight.
        channels: Channels of the CNN's stride-4 stem and stride-2 convolutions.
        history_dim: Width of the history MLP.
        net_arch: Hidden layers of the policy and value heads.
        perception_samples: Labelled patches for the perception pretraining (0: none).
        perception_epochs: Passes over them.
        freeze_perception: Keep the CNN and perception head fixed during PPO.
        perceived: Add perception v2's readings (presence and severity of the 8 types) of
            the current image and the input to the observation (:mod:`agents.ppo.perceived`);
            a warm start must have been trained the same way (``tir train ppo-bc
            --perceived``).
        perceived_truth: A diagnostic, not an agent: the episode's true degradation types
            in the place of perception's readings (:data:`agents.ppo.perceived.TRUTH`), to
            measure how much of the policy's gap to ``oracle`` is perception. The exported
            policy runs only on benchmark episodes.
        params: ``tuned``: the env runs the preferred tools the policy calls with the
            parameters fitted to the protocol (as the ``ppo`` agent does by default), so it
            learns what its calls do when deployed; ``default``: the presets as they are.
        checkpoint_every: Env steps between checkpoints.
        threads: torch CPU threads.
        device: ``cpu``, ``cuda`` or ``auto``.
        verbose: Print SB3's progress table.
    """

    out: str = "runs/ppo"
    total_timesteps: int = 24_000
    resume: bool = False
    export: str | None = None
    init: str | None = None
    seed: int = 0
    action_space: ActionSpaceKind = "catalogue"
    bins: int = 9
    n_params: int = 2
    images: str = "train"
    combos: str = "mio-a"
    patch_size: int = 128
    obs_size: int = 128
    max_steps: int = 5
    history_len: int = 5
    reward: Literal["psnr", "static", "adaptive"] = "psnr"
    step_cost: float = 0.1
    reward_scale: float = 0.1
    n_envs: int = 8
    pool_workers: int = 2
    n_steps: int = 64
    batch_size: int = 128
    n_epochs: int = 6
    learning_rate: float = 5e-4
    gamma: float = 0.9
    gae_lambda: float = 0.9
    clip_range: float = 0.2
    ent_coef: float = 0.01
    vf_coef: float = 0.5
    channels: tuple[int, ...] = (16, 32, 64, 64)
    history_dim: int = 64
    net_arch: tuple[int, ...] = (64,)
    perception_samples: int = 3000
    perception_epochs: int = 40
    freeze_perception: bool = True
    perceived: bool = False
    perceived_truth: bool = False
    params: ParamsChoice = "default"
    checkpoint_every: int = 4096
    threads: int = 1
    device: str = "cpu"
    verbose: bool = True
    catalogue: tuple[Any, ...] = field(default=PRESETS, repr=False)


def parse_config(args: Sequence[str] | None = None) -> TrainConfig:
    """``--field value`` for every :class:`TrainConfig` field (:mod:`tir_env.config_cli`)."""
    return parse_with_catalogue(TrainConfig, args, "tir train ppo")


class ScaleReward(VecEnvWrapper):
    """Multiplies rewards by a constant (the monitor below it logs them unscaled)."""

    def __init__(self, venv: VecEnv, scale: float) -> None:
        super().__init__(venv)
        self.scale = scale

    def reset(self) -> Any:
        """Reset the wrapped env."""
        return self.venv.reset()

    def step_wait(self) -> Any:
        """Step the wrapped env and scale the rewards."""
        obs, rewards, dones, infos = self.venv.step_wait()
        return obs, rewards * self.scale, dones, infos


class PsnrLog(BaseCallback):
    """Logs the final PSNR and the PSNR gain of the last 100 finished episodes."""

    def __init__(self) -> None:
        super().__init__()
        self.psnr: deque[float] = deque(maxlen=100)
        self.gain: deque[float] = deque(maxlen=100)

    def _on_step(self) -> bool:
        for info, done in zip(self.locals["infos"], self.locals["dones"], strict=True):
            if done and "psnr" in info:
                self.psnr.append(info["psnr"])
                self.gain.append(info["psnr"] - info["psnr_input"])
        return True

    def _on_rollout_end(self) -> None:
        if self.gain:
            self.logger.record("rollout/ep_psnr_mean", float(np.mean(self.psnr)))
            self.logger.record("rollout/ep_psnr_gain_mean", float(np.mean(self.gain)))


class Checkpoint(BaseCallback):
    """Saves ``ppo_<steps>_steps.zip`` every ``every`` steps, between PPO updates.

    Saving at the start of a rollout means the previous rollout has been trained on: the
    checkpoint's step counter counts exactly the samples its weights and optimizer have seen.
    """

    def __init__(self, folder: Path, every: int) -> None:
        super().__init__()
        self.folder, self.every = folder, every
        self.last_saved = 0

    def _on_training_start(self) -> None:
        self.last_saved = self.model.num_timesteps

    def _on_rollout_start(self) -> None:
        if self.model.num_timesteps - self.last_saved >= self.every:
            self.save()

    def _on_step(self) -> bool:
        return True

    def save(self) -> Path:
        """Write a checkpoint now, atomically (a kill mid-save leaves no partial file)."""
        path = self.folder / f"ppo_{self.model.num_timesteps}_steps.zip"
        with atomic_path(path) as tmp:
            self.model.save(tmp)
        self.last_saved = self.model.num_timesteps
        return path


def main(args: Sequence[str] | None = None) -> PPO:
    """Train (or resume) PPO as configured by ``args``; return the trained model."""
    cfg = parse_config(args)
    actions = make_actions(cfg.action_space, cfg.catalogue, cfg.bins, cfg.n_params)
    out = Path(cfg.out)
    resume_from = check_run_folder(out, cfg)  # refuses before anything is written
    for sub in ("checkpoints", "logs"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    write_text_atomic(out / "config.json", json.dumps(_jsonable(cfg), indent=2) + "\n")
    torch.set_num_threads(cfg.threads)

    # 1. N envs sharing one tool pool; PSNR-gain reward, scaled for PPO.
    network = perceived_network(cfg)
    pool = LocalToolPool(workers=cfg.pool_workers, device=cfg.device)
    tir_venv = TIRSB3VecEnv(
        cfg.n_envs,
        actions,
        obs_size=cfg.obs_size,
        history_len=cfg.history_len,
        pool=pool,
        perceived=network,
        params=cfg.params,
        images=cfg.images,
        combos=cfg.combos,
        patch_size=cfg.patch_size,
        max_steps=cfg.max_steps,
        reward=cfg.reward,
        step_cost=cfg.step_cost,
        metrics=("psnr",),
    )
    venv = ScaleReward(VecMonitor(tir_venv), cfg.reward_scale)

    # 2. PPO: resume from the last checkpoint, or start fresh.
    labels = degradation_labels(cfg.combos)
    if resume_from is not None:
        model = PPO.load(resume_from, env=venv, device=cfg.device, print_system_info=False)
        logger.info("resuming from %s at step %d", resume_from, model.num_timesteps)
    else:
        model = PPO(
            "MultiInputPolicy",
            venv,
            learning_rate=LinearSchedule(cfg.learning_rate, 0.1 * cfg.learning_rate, 1.0),
            n_steps=cfg.n_steps,
            batch_size=cfg.batch_size,
            n_epochs=cfg.n_epochs,
            gamma=cfg.gamma,
            gae_lambda=cfg.gae_lambda,
            clip_range=cfg.clip_range,
            ent_coef=cfg.ent_coef,
            vf_coef=cfg.vf_coef,
            policy_kwargs=(
                _policy_kwargs(cfg, len(labels)) if cfg.init is None else _init_kwargs(cfg)
            ),
            seed=cfg.seed,
            device=cfg.device,
        )
        if cfg.init is not None:
            warm_start(model, cfg.init)
    model.set_random_seed(cfg.seed + model.num_timesteps)  # also seeds the envs' next reset

    # 3. Perception (new runs): name the degradations first, then freeze the CNN.
    perception: dict[str, Any] = {}
    if resume_from is None and cfg.perception_samples > 0 and cfg.init is None:
        images, targets = perception_data(cfg, labels, cfg.images, cfg.perception_samples, cfg.seed)
        loss = pretrain_perception(
            _features(model),
            images,
            targets,
            cfg.perception_epochs,
            cfg.seed,
            log=lambda epoch, loss: logger.info("perception epoch %d: loss %.4f", epoch, loss),
        )
        perception = {"labels": list(labels), "train_loss": loss}
        val_source = VAL_IMAGES.get(cfg.images)
        if val_source is not None:  # held-out check on the val photos
            val_x, val_y = perception_data(cfg, labels, val_source, 200, cfg.seed + 1)
            perception["val_accuracy"] = perception_accuracy(model, val_x, val_y, labels)
            logger.info("perception accuracy on val: %s", perception["val_accuracy"])
        write_text_atomic(out / "perception.json", json.dumps(perception, indent=2) + "\n")
    elif resume_from is None and cfg.init is not None:
        # The warm start's perception head comes with it: so do the names of its outputs.
        perception = dict(load_spec(cfg.init).extra.get("perception", {}))
        write_text_atomic(out / "perception.json", json.dumps(perception, indent=2) + "\n")

    # 4. Logs: TensorBoard (one run across segments), a CSV per segment, stdout.
    start = model.num_timesteps
    supersede_logs(out / "logs", start)
    formats: list[KVWriter] = [
        TensorBoardOutputFormat(str(out / "tb")),
        CSVOutputFormat(str(out / "logs" / f"progress_{start:08d}.csv")),
    ]
    if cfg.verbose:
        formats.append(HumanOutputFormat(sys.stdout))
    model.set_logger(Logger(str(out), formats))

    # 5. Learn, checkpointing between updates.
    checkpoint = Checkpoint(out / "checkpoints", cfg.checkpoint_every)
    began = time.perf_counter()
    model.learn(
        total_timesteps=max(0, cfg.total_timesteps - start),
        callback=[checkpoint, PsnrLog()],
        reset_num_timesteps=resume_from is None,
    )
    checkpoint.save()
    logger.info(
        "trained %d steps in %.0f s", model.num_timesteps - start, time.perf_counter() - began
    )

    # 6. The final model, and the deployable policy.
    with atomic_path(out / "final.zip") as tmp:
        model.save(tmp)
    if cfg.export:
        spec = PolicySpec(
            catalogue=tuple(cfg.catalogue),
            obs_size=cfg.obs_size,
            history_len=cfg.history_len,
            action_space=cfg.action_space,
            bins=cfg.bins,
            n_params=cfg.n_params,
            perceived=network,
            features=dict(model.policy_kwargs["features_extractor_kwargs"]),
            net_arch={k: list(v) for k, v in model.policy_kwargs["net_arch"].items()},
            extra={
                "perception": _read_json(out / "perception.json"),
                "num_timesteps": int(model.num_timesteps),
                "config": _jsonable(cfg),
                "command": "tir train ppo " + " ".join(args if args is not None else sys.argv[1:]),
            },
        )
        export_policy(model.policy, spec, cfg.export)
    venv.close()
    pool.close()
    return model


def perceived_network(cfg: TrainConfig) -> str | None:
    """The perception network whose readings the run's observations carry (``--perceived``).

    Raises:
        ExpertDataError: the warm start (``--init``) was trained otherwise.
    """
    network = perceived.network(cfg.perceived, cfg.perceived_truth)
    if cfg.init is not None:
        initial = load_spec(cfg.init).perceived
        if initial != network:
            raise ExpertDataError(
                f"--init {cfg.init} reads perception {initial!r}, this run {network!r}: pass "
                "--perceived exactly when the warm start was trained with it"
            )
    return network


def check_run_folder(out: Path, cfg: TrainConfig) -> Path | None:
    """Check that ``cfg`` may write to ``out``; return the checkpoint to resume from, if any.

    Raises:
        RunExistsError: ``out`` holds a run and ``cfg.resume`` is off.
        RunMismatchError: ``cfg.resume`` with a config that differs from ``out/config.json``.
        CheckpointError: ``cfg.resume``, checkpoints exist and none of them is usable.
    """
    if not cfg.resume:
        markers = ("config.json", "final.zip", *_relative(out, out.glob("checkpoints/*.zip")))
        refuse_used_folder(out, markers, "pass --resume to continue it")
        return None
    saved = _read_json(out / "config.json")
    new = _jsonable(cfg)
    # A field added since the folder's run was started had its default then.
    defaults = _jsonable(TrainConfig())
    saved = {**{k: v for k, v in defaults.items() if k not in saved}, **saved} if saved else {}
    changed = [
        f"{k}: {saved.get(k)!r} -> {new.get(k)!r}"
        for k in sorted(set(saved) | set(new))
        if k not in RESUMABLE_FIELDS and saved.get(k) != new.get(k)
    ]
    if saved and changed:
        raise RunMismatchError(
            f"--resume with a config that differs from {out / 'config.json'}: "
            f"{'; '.join(changed)}. Resume with the same options (only "
            f"{', '.join(sorted(RESUMABLE_FIELDS))} may change), or choose a new --out."
        )
    return newest_good_checkpoint(out / "checkpoints")


def newest_good_checkpoint(folder: Path) -> Path | None:
    """The checkpoint with the most steps that passes :func:`checkpoint_problem`.

    Each newer one that fails is skipped with a :class:`~tir_env.errors.SkippedWarning`.

    Raises:
        CheckpointError: checkpoints exist but none is usable.
    """
    found: list[Path] = []
    while (path := last_checkpoint(folder, exclude=found)) is not None:
        problem = checkpoint_problem(path)
        if problem is None:
            return path
        warnings.warn(
            f"skipping checkpoint {path}: {problem}; falling back to the one before",
            SkippedWarning,
            stacklevel=2,
        )
        found.append(path)
    if found:
        raise CheckpointError(
            f"no usable checkpoint in {folder} ({len(found)} damaged); start a new run with "
            "another --out"
        )
    return None


def checkpoint_problem(path: Path) -> str | None:
    """Why an SB3 checkpoint cannot be resumed from (cut short, corrupt), or None."""
    try:
        with zipfile.ZipFile(path) as zf:
            broken = zf.testzip()  # reads every member and checks its CRC
            names = set(zf.namelist())
    except (zipfile.BadZipFile, OSError, EOFError) as err:
        return f"not a complete zip file ({err})"
    if broken is not None:
        return f"member {broken!r} is corrupt"
    missing = {"data", "policy.pth"} - names
    return f"missing {sorted(missing)}" if missing else None


def supersede_logs(folder: Path, start: int) -> None:
    """Move log segments that begin after ``start`` to ``folder/superseded``; mend the rest.

    They were written after the checkpoint a resume starts from, by a segment whose later
    checkpoints were lost; the learning curve must not mix them with the resumed steps. A
    segment kept loses a last row cut short by a kill (:func:`drop_cut_row`).
    """
    for path in folder.glob("progress_*.csv"):
        begin = path.stem.removeprefix("progress_")
        if begin.isdigit() and int(begin) > start:
            (folder / "superseded").mkdir(exist_ok=True)
            path.replace(folder / "superseded" / path.name)
        else:
            drop_cut_row(path)


def drop_cut_row(path: Path) -> None:
    """Drop a last CSV row without its newline: a kill cut it short mid-write.

    Its fields may be cut too (``12`` of ``128`` steps), so it would put a wrong step on the
    learning curve.
    """
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):
        with atomic_path(path) as tmp:
            tmp.write_bytes(data[: data.rfind(b"\n") + 1])


#: The val photos of each training image source that has them (the perception check).
VAL_IMAGES = {"train": "val", "corpus:train": "corpus:val"}


def degradation_labels(combos: str) -> tuple[str, ...]:
    """The degradation types of a protocol's combinations (the perception head's outputs)."""
    from tir_env.config import EnvConfig

    return tuple(sorted({name for combo in EnvConfig(combos=combos).combo_list for name in combo}))


def perception_data(
    cfg: TrainConfig, labels: Sequence[str], images: str, n: int, seed: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` policy-size patches and their degradation labels, drawn through the env.

    A draw is one of the configured combinations (55%), one degradation of it alone (35%, as
    the image looks once a tool removed the other) or the clean patch (10%).
    """
    env = TIREnv(
        images=images,
        combos=cfg.combos,
        patch_size=cfg.patch_size,
        obs_size=cfg.obs_size,
        metrics=("psnr",),
        pool=SyncToolPool(),
    )
    rng = np.random.default_rng(seed)
    combos = env.config.combo_list
    x = torch.zeros((n, 3, cfg.obs_size, cfg.obs_size), dtype=torch.uint8)
    y = torch.zeros((n, len(labels)))
    for k in range(n):
        combo, u = tuple(combos[int(rng.integers(len(combos)))]), rng.random()
        if u < 0.35:
            combo = (combo[int(rng.integers(len(combo)))],)
        _, info = env.reset(seed=int(rng.integers(2**31)), options={"degradations": combo})
        clean = u >= 0.9
        image = env.clean_image() if clean else env.input_image()
        x[k] = torch.from_numpy(policy_image(image, cfg.obs_size))
        for name in [] if clean else info["degradations"]:
            y[k, labels.index(name)] = 1.0
    return x, y


def perception_accuracy(
    model: PPO, images: torch.Tensor, targets: torch.Tensor, labels: Sequence[str]
) -> dict[str, float]:
    """Per-label accuracy of the perception head (threshold 0.5) and the exact-match rate."""
    features = _features(model)
    with torch.no_grad():
        predicted = (features.degradation_logits(images.float() / 255.0) > 0).float()
    hits = predicted == targets
    scores = {name: float(hits[:, i].float().mean()) for i, name in enumerate(labels)}
    return {**scores, "all": float(hits.all(dim=1).float().mean())}


def _features(model: PPO) -> TIRFeatures:
    extractor = model.policy.features_extractor
    if not isinstance(extractor, TIRFeatures):
        raise TypeError(f"expected TIRFeatures, got {type(extractor).__name__}")
    return extractor


def _relative(root: Path, paths: Iterable[Path]) -> list[str]:
    return [str(p.relative_to(root)) for p in sorted(paths)]


def _read_json(path: Path) -> dict[str, Any]:
    return dict(json.loads(path.read_text())) if path.is_file() else {}


def _policy_kwargs(cfg: TrainConfig, n_labels: int) -> dict[str, Any]:
    features = {
        "channels": list(cfg.channels),
        "history_dim": cfg.history_dim,
        "n_labels": n_labels,
        "freeze": cfg.freeze_perception,
    }
    if cfg.perceived or cfg.perceived_truth:
        features["perceived_dim"] = perceived.WIDTH
    return {
        "features_extractor_class": TIRFeatures,
        "features_extractor_kwargs": features,
        "net_arch": {"pi": list(cfg.net_arch), "vf": list(cfg.net_arch)},
    }


def _init_kwargs(cfg: TrainConfig) -> dict[str, Any]:
    """The warm start's architecture, frozen or not as this run says (not as the init was)."""
    kwargs = init_policy_kwargs(cfg.init)  # type: ignore[arg-type]
    kwargs["features_extractor_kwargs"]["freeze"] = cfg.freeze_perception
    return kwargs


def _jsonable(cfg: TrainConfig) -> dict[str, Any]:
    data = {f.name: getattr(cfg, f.name) for f in dataclasses.fields(cfg)}
    data["catalogue"] = [str(c) for c in cfg.catalogue]
    return {k: list(v) if isinstance(v, tuple) else v for k, v in data.items()}


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    main()
