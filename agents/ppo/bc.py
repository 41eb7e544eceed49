"""Behaviour cloning of the PPO policy on the expert dataset (``tir train ppo-bc``).

TIR-Agent's recipe is imitation first, then RL. This recipe clones an expert's
(``exhaustive-ref``'s or ``oracle``'s, optionally with DAgger rounds: :mod:`agents.ppo.dagger`)
trajectories (:mod:`agents.experts`, ``tir experts collect``) into the SB3 actor-critic of
the ``ppo`` agent, and exports it in the ``ppo`` agent's format, so it runs as the ``ppo-bc``
agent and warm-starts PPO (``tir train ppo --init STEM``). :func:`main` reads top to bottom:

1. **Map expert calls to catalogue actions.** The policy chooses from a catalogue of tool x
   parameter presets (:data:`agents.ppo.catalogue.PRESETS`); the expert calls any classical
   tool with its defaults. A call maps *exactly* to the catalogue entry of the same tool with
   the same parameters (defaults filled in). Otherwise it maps *approximately* to the entry
   whose output on the same image is nearest (mean squared difference) to the expert call's
   output, among the entries of the same task (any entry if the task has none). Counts of
   each kind, and per tool, go into the summary and the exported JSON.
   In the ``params`` action space (``--action-space params``, :mod:`agents.ppo.actions`) a
   call of one of the policy's tools maps to that tool and the nearest bin of each chosen
   parameter (``exact`` when the bins hold its values, else ``bins``); a call of another tool
   maps to the policy tool whose default call's output is nearest, as above, with its
   default bins.
2. **Make the samples.** Each episode is replayed through the env with the *mapped* actions
   (so every state is one the policy can reach by its own actions), giving one sample per
   step: the policy's observation (current and input image at ``obs_size``, the one-hot
   history of its own actions) and the mapped action; the state after the last call is
   labelled STOP (action 0).
3. **Perception.** As in PPO training (:mod:`agents.ppo.train`), the CNN and its degradation
   head first learn to name each episode's degradations from its input image; they are then
   frozen (``freeze_perception``) so imitation shapes the heads on stable features.
4. **Clone.** Cross-entropy of the expert's action under the policy's action distribution
   (``policy.evaluate_actions``; in the ``params`` space, summed over the tool and the
   parameters that tool has, so STOP and missing parameters teach no bin), Adam,
   minibatches; the loss and the accuracy on held-out
   episodes (``val_fraction`` of the photos) are logged per epoch, and the epoch with the
   lowest held-out loss is kept.
5. **Export** ``<out>.safetensors`` + ``<out>.json`` (:func:`agents.ppo.policy.export_policy`).
"""

from __future__ import annotations

import copy
import dataclasses
import json
import logging
import math
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from agents import experts
from agents.plan_table import PlansChoice
from agents.ppo import perceived
from agents.ppo.actions import (
    ActionSpaceKind,
    CatalogueActions,
    Key,
    ParamActions,
    PolicyActions,
    make_actions,
)
from agents.ppo.catalogue import PRESETS, parse_with_catalogue
from agents.ppo.features import TIRFeatures, pretrain_perception
from agents.ppo.policy import PolicySpec, build_policy, export_policy, load_policy, load_spec
from tir_env.env import TIREnv
from tir_env.errors import ExpertDataError
from tir_env.tools.base import resolve_params, tool_info
from tir_env.tools.pool import ToolPool
from tir_env.types import ToolCall
from tir_env.wrappers import policy_image

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class BCConfig:
    """Options of the behaviour-cloning recipe (every field is a ``--flag``).

    Attributes:
        data: Expert dataset folders (``tir experts collect``).
        out: Stem of the exported policy (``<out>.safetensors`` + ``<out>.json``).
        init: Start from this exported policy (its perception included) instead of a fresh one.
        obs_size: Side of the policy's images (128: full resolution of 128 px crops).
        history_len: Rows of the action history.
        max_steps: The PPO env's step budget (a STOP label only fits below it).
        epochs: Passes over the samples (the one with the lowest held-out loss is kept).
        batch_size: Samples per step.
        lr: Adam step size.
        val_fraction: Fraction of the photos held out for the validation loss and accuracy.
        perception_epochs: Passes of the perception pretraining (0: none; ignored with init).
        freeze_perception: Keep the CNN and the perception head fixed while cloning.
        channels: CNN channels (as ``tir train ppo``).
        history_dim: Width of the history MLP.
        net_arch: Hidden layers of the policy and value heads.
        seed: Seeds the policy, the split, the shuffling and the augmentations.
        threads: torch CPU threads.
        catalogue: The policy's actions ``1 .. C`` (0 is STOP).
        action_space: ``catalogue`` (presets) or ``params`` (the catalogue's tools, each
            parameter chosen from bins), as ``tir train ppo --action-space``.
        bins: Bins per parameter (``params``).
        n_params: Parameters chosen per tool (``params``).
        perceived: Add perception v2's readings of both images to the observation
            (:mod:`agents.ppo.perceived`), as ``tir train ppo --perceived``.
        perceived_truth: A diagnostic, not an agent: the episode's true degradation types
            in the place of perception's readings, as ``tir train ppo --perceived-truth``
            (the clone then runs only on labelled episodes).
        dagger_rounds: Rounds of DAgger after cloning (:mod:`agents.ppo.dagger`): the clone
            runs episodes of the dataset, ``oracle`` labels every state it reaches, and it is
            cloned again on everything. Needs datasets collected with ``--expert oracle``.
        dagger_episodes: Episodes the clone runs per round (drawn from the datasets).
        dagger_epochs: Passes over the samples after each round.
        dagger_cost: Weight each state the clone reaches by ``1 + dagger_cost x regret``, the
            regret being how many dB worse the episode ends (oracle finishing it either way)
            after the clone's own choice than after oracle's (AggreVaTe's cost-to-go, with
            the clean image at training time, like the reward). 0: plain DAgger.
    """

    data: tuple[str, ...] = ("runs/experts",)
    out: str = "runs/ppo_bc/ppo_bc"
    init: str | None = None
    obs_size: int = 128
    history_len: int = 5
    max_steps: int = 5
    epochs: int = 100
    batch_size: int = 32
    lr: float = 3e-3
    val_fraction: float = 0.15
    perception_epochs: int = 20
    freeze_perception: bool = True
    channels: tuple[int, ...] = (16, 32, 64, 64)
    history_dim: int = 64
    net_arch: tuple[int, ...] = (64,)
    seed: int = 0
    threads: int = 1
    catalogue: tuple[ToolCall, ...] = field(default=PRESETS, repr=False)
    action_space: ActionSpaceKind = "catalogue"
    bins: int = 9
    n_params: int = 2
    perceived: bool = False
    perceived_truth: bool = False
    dagger_rounds: int = 0
    dagger_episodes: int = 600
    dagger_epochs: int = 30
    dagger_cost: float = 0.0

    def __post_init__(self) -> None:
        if min(self.dagger_rounds, self.dagger_epochs) < 0 or self.dagger_episodes < 1:
            raise ExpertDataError(
                "dagger_rounds and dagger_epochs must be >= 0 and dagger_episodes >= 1"
            )
        if not (math.isfinite(self.dagger_cost) and self.dagger_cost >= 0):
            raise ExpertDataError(f"dagger_cost must be finite and >= 0, not {self.dagger_cost}")

    def perceived_network(self) -> str | None:
        """The perception network whose readings the observation carries, or ``None``."""
        return perceived.network(self.perceived, self.perceived_truth)

    def actions(self) -> PolicyActions:
        """The policy's action space (:mod:`agents.ppo.actions`)."""
        return make_actions(self.action_space, self.catalogue, self.bins, self.n_params)


@dataclass
class Samples:
    """Behaviour-cloning samples: policy observations and the expert's (mapped) actions.

    Attributes:
        image: uint8 N x 3 x S x S current images.
        input: uint8 N x 3 x S x S input images.
        history: float32 N x W action histories (flattened).
        action: int64 N catalogue actions (0: STOP), or N x (1 + P) params actions.
        episode: The dataset index of each sample's episode.
        photo: The photo id of each sample's episode.
        inputs: uint8 E x 3 x S x S input image of each episode, and ``labels`` its
            degradation types (for the perception pretraining).
        mask: bool N x (1 + P): the action dims that count in the loss (``params`` only).
        perceived: float32 N x W perception readings of both images (``--perceived`` only).
        weight: float32 N loss weights (``--dagger-cost`` only; ``None``: all 1).
    """

    image: np.ndarray
    input: np.ndarray
    history: np.ndarray
    action: np.ndarray
    episode: np.ndarray
    photo: list[str]
    inputs: np.ndarray
    labels: list[list[str]]
    mask: np.ndarray | None = None
    perceived: np.ndarray | None = None
    weight: np.ndarray | None = None

    def obs(self, idx: np.ndarray) -> dict[str, np.ndarray]:
        """The observations of samples ``idx`` (SB3's dict layout)."""
        obs = {"image": self.image[idx], "input": self.input[idx], "history": self.history[idx]}
        if self.perceived is not None:
            obs[perceived.KEY] = self.perceived[idx]
        return obs


# ------------------------------------------------------------------------------ mapping
def resolved(call: ToolCall) -> dict[str, float]:
    """Every parameter of a call, defaults filled in."""
    return {k: float(call.params.get(k, p.default)) for k, p in tool_info(call.tool).params.items()}


def exact_action(call: ToolCall, catalogue: Sequence[ToolCall]) -> int | None:
    """The action (1-based) of the catalogue entry identical to ``call``, if any."""
    want = resolved(call)
    for i, entry in enumerate(catalogue):
        got = resolved(entry) if entry.tool == call.tool else None
        if got is not None and all(math.isclose(got[k], want[k], rel_tol=1e-6) for k in want):
            return i + 1
    return None


def nearest_action(env: TIREnv, call: ToolCall, catalogue: Sequence[ToolCall]) -> tuple[int, str]:
    """The catalogue action for ``call`` on the env's current image, and how it matched.

    Returns:
        ``(action, kind)``: kind is ``exact``, ``same_task`` (nearest output among the entries
        of the call's task) or ``other_task`` (nearest output among all entries).
    """
    exact = exact_action(call, catalogue)
    if exact is not None:
        return exact, "exact"
    task = tool_info(call.tool).task
    pool = [i for i, c in enumerate(catalogue) if tool_info(c.tool).task == task]
    kind = "same_task" if pool else "other_task"
    pool = pool or list(range(len(catalogue)))
    image = env.current_batch()
    outs = env.lookahead(image, [call, *(catalogue[i] for i in pool)])
    target = outs[0] if outs[0] is not None else image
    errors = [
        float(((o - target) ** 2).mean()) if o is not None and o.shape == target.shape else np.inf
        for o in outs[1:]
    ]
    return pool[int(np.argmin(errors))] + 1, kind


def expert_action(env: TIREnv, call: ToolCall, actions: PolicyActions) -> tuple[Key, str]:
    """The policy action for an expert ``call`` on the env's current image, and how it matched.

    Returns:
        ``(action, kind)``. Catalogue: as :func:`nearest_action`. Params: ``exact`` (the
        policy's tool, its bins hold the call's values), ``bins`` (the nearest bins), or
        ``same_task`` / ``other_task`` (another tool: the policy tool with the nearest output,
        its default bins).
    """
    if isinstance(actions, CatalogueActions):
        return nearest_action(env, call, actions.catalogue)
    if not isinstance(actions, ParamActions):
        raise TypeError(f"unknown action space {type(actions).__name__}")
    if call.tool not in actions.tools:
        index, kind = nearest_action(env, call, [ToolCall(t) for t in actions.tools])
        return actions.key(actions.action(ToolCall(actions.tools[index - 1]))), kind
    action = actions.key(actions.action(call))
    mapped = actions.call(action)  # the call's tool, never STOP
    spec = tool_info(call.tool).params
    want, got = resolved(call), resolve_params(call.tool, spec, mapped.params if mapped else {})
    same = all(math.isclose(got[k], want[k], rel_tol=1e-6, abs_tol=1e-9) for k in want)
    return action, "exact" if same else "bins"


# ------------------------------------------------------------------------------ samples
def make_samples(
    folders: Sequence[str],
    catalogue: PolicyActions | Sequence[ToolCall],
    obs_size: int,
    history_len: int,
    max_steps: int,
    pool: ToolPool | None = None,
    perceived_network: str | None = None,
) -> tuple[Samples, dict[str, Any]]:
    """Replay every expert episode with mapped actions; the samples and the mapping report.

    ``catalogue``: the policy's actions, or the tool calls of catalogue actions ``1 .. C``;
    ``perceived_network``: add that perception network's readings to the observations.
    """
    from tqdm.auto import tqdm

    actions = catalogue if isinstance(catalogue, PolicyActions) else CatalogueActions(catalogue)
    keys = ("image", "input", "history", "action", "ep", "truth")
    rows: dict[str, list[Any]] = {k: [] for k in keys}
    photos: list[str] = []
    inputs, labels = [], []
    kinds: Counter[str] = Counter()
    per_tool: dict[str, Counter[str]] = {}
    for folder in folders:
        cfg = experts.config_of(folder)
        env = TIREnv(**experts.env_kwargs(cfg), pool=pool)
        missing = sorted(set(actions.tools) - set(env.tools))
        if missing:
            raise ExpertDataError(f"{folder}: the env lacks the policy's tools {missing}")
        for record in tqdm(experts.load_records(folder), desc=f"bc samples {folder}"):
            _, info = env.reset(seed=int(record["seed"]), options=experts.replay_options(record))
            source = policy_image(env.input_image(), obs_size)
            inputs.append(source)
            labels.append(list(info["degradations"]))
            taken: list[Key] = []
            calls = experts.calls_of(record)[:max_steps]
            for step in [*calls, None][:max_steps]:
                action: Key = actions.stop()
                if step is not None:
                    action, kind = expert_action(env, step, actions)
                    kinds[kind] += 1
                    per_tool.setdefault(step.tool, Counter())[str(actions.call(action))] += 1
                rows["image"].append(policy_image(env.current_image(), obs_size))
                rows["input"].append(source)
                rows["history"].append(actions.history(taken, history_len).reshape(-1))
                rows["action"].append(action)
                rows["ep"].append(int(record["index"]))
                rows["truth"].append(list(info["degradations"]))
                photos.append(str(record["image_id"]))
                if actions.call(action) is not None:
                    env.step(actions.native(action, env.tools))
                    taken.append(action)
    action_array = np.asarray(rows["action"], dtype=np.int64)
    mask = (
        np.stack([actions.mask(a) for a in rows["action"]])
        if isinstance(actions, ParamActions)
        else None
    )
    image, source = np.stack(rows["image"]), np.stack(rows["input"])
    samples = Samples(
        image=image,
        input=source,
        history=np.stack(rows["history"]).astype(np.float32),
        action=action_array,
        episode=np.asarray(rows["ep"], dtype=np.int64),
        photo=photos,
        inputs=np.stack(inputs),
        labels=labels,
        mask=mask,
        perceived=(
            None
            if perceived_network is None
            else perceived.observations(image, source, perceived_network, rows["truth"])
        ),
    )
    total = sum(kinds.values())
    names = ("exact", "bins") if isinstance(actions, ParamActions) else ("exact",)
    report = {
        "calls": total,
        **{k: kinds.get(k, 0) for k in (*names, "same_task", "other_task")},
        "exact_fraction": kinds.get("exact", 0) / max(1, total),
        "per_tool": {t: dict(c.most_common()) for t, c in sorted(per_tool.items())},
    }
    return samples, report


# ------------------------------------------------------------------------------ training
def bc_loss(
    policy: Any,
    obs: dict[str, np.ndarray],
    actions: np.ndarray,
    mask: np.ndarray | None = None,
) -> torch.Tensor:
    """Mean negative log-likelihood of ``actions`` under the policy's distribution.

    With ``mask`` (``params`` actions, N x (1 + P)), only the masked dims' log-probabilities
    count: a STOP or a tool without a parameter says nothing about that parameter's bin.
    """
    obs_t, _ = policy.obs_to_tensor(obs)
    return _nll(policy.get_distribution(obs_t), actions, mask)


def accuracy(policy: Any, samples: Samples, idx: np.ndarray) -> float:
    """Fraction of samples whose most likely action is the expert's (every masked dim)."""
    if len(idx) == 0:
        return float("nan")
    with torch.no_grad():
        obs_t, _ = policy.obs_to_tensor(samples.obs(idx))
        return _hits(policy.get_distribution(obs_t), samples.action[idx], _mask(samples, idx))


def _nll(
    dist: Any, actions: np.ndarray, mask: np.ndarray | None, weight: np.ndarray | None = None
) -> torch.Tensor:
    """Mean negative log-likelihood of ``actions`` under an SB3 distribution (see bc_loss).

    ``weight``: each row's weight (a weighted mean; ``None``: all 1).
    """
    actions_t = torch.as_tensor(actions)
    if mask is None:
        per_row = dist.log_prob(actions_t)
    else:
        per_dim = _per_dim(dist, lambda d, a: d.log_prob(a), actions_t)
        per_row = (per_dim * torch.as_tensor(mask, dtype=per_dim.dtype)).sum(dim=1)
    if weight is None:
        return -per_row.mean()
    w = torch.as_tensor(weight, dtype=per_row.dtype)
    return -(per_row * w).sum() / w.sum()


def _hits(dist: Any, actions: np.ndarray, mask: np.ndarray | None) -> float:
    """Fraction of rows whose most likely action is ``actions``' (every masked dim)."""
    if mask is None:
        return float((dist.distribution.probs.argmax(dim=1).numpy() == actions).mean())
    best = _per_dim(dist, lambda d, _: d.probs.argmax(dim=1), None).numpy()
    return float(((best == actions) | ~mask).all(axis=1).mean())


def _per_dim(dist: Any, fn: Any, actions: torch.Tensor | None) -> torch.Tensor:
    """``fn(categorical, action)`` of every dim of a MultiDiscrete distribution, N x D."""
    dists = dist.distribution  # one Categorical per dim
    columns = [None] * len(dists) if actions is None else torch.unbind(actions, dim=1)
    return torch.stack([fn(d, a) for d, a in zip(dists, columns, strict=True)], dim=1)


class Distributions:
    """The policy's action distribution on any subset of the samples.

    With a frozen perception CNN its image features never change while cloning, so they are
    computed once here and only the history MLP and the heads run per batch: an epoch costs
    a small fraction of a full forward pass over 5,000 pairs of 128 px images. Otherwise
    (``freeze_perception`` off) every call runs the whole policy.
    """

    def __init__(self, policy: Any, samples: Samples, frozen: bool, chunk: int = 256) -> None:
        self.policy = policy
        self.samples = samples
        self.image_features: torch.Tensor | None = None
        if frozen:
            extractor = _features(policy)
            parts = []
            with torch.no_grad():
                for start in range(0, len(samples.action), chunk):
                    idx = np.arange(start, min(start + chunk, len(samples.action)))
                    obs_t, _ = policy.obs_to_tensor(samples.obs(idx))
                    full = policy.extract_features(obs_t, extractor)
                    parts.append(full[:, : full.shape[1] - _history_width(extractor)])
            self.image_features = torch.cat(parts)

    def __call__(self, idx: np.ndarray) -> Any:
        """The SB3 distribution of samples ``idx`` (with gradients to the trainable parts)."""
        if self.image_features is None:
            obs_t, _ = self.policy.obs_to_tensor(self.samples.obs(idx))
            return self.policy.get_distribution(obs_t)
        extractor = _features(self.policy)
        history = extractor.history(torch.as_tensor(self.samples.history[idx]))
        features = torch.cat([self.image_features[torch.as_tensor(idx)], history], dim=1)
        latent = self.policy.mlp_extractor.forward_actor(features)
        return self.policy._get_action_dist_from_latent(latent)


def _history_width(extractor: TIRFeatures) -> int:
    last = [m for m in extractor.history if isinstance(m, torch.nn.Linear)][-1]
    return int(last.out_features)


def split_photos(photos: Sequence[str], fraction: float, seed: int) -> tuple[np.ndarray, ...]:
    """Sample indices of training and held-out photos (split by photo, never by crop)."""
    ids = sorted(set(photos))
    rng = np.random.default_rng(seed)
    n_val = min(len(ids) - 1, round(fraction * len(ids))) if fraction > 0 else 0
    held = set(rng.permutation(ids)[:n_val].tolist()) if n_val > 0 else set()
    mask = np.array([p in held for p in photos])
    return np.flatnonzero(~mask), np.flatnonzero(mask)


def main(cfg: BCConfig, pool: ToolPool | None = None, command: str = "") -> dict[str, Any]:
    """Run the recipe (see the module docstring); return the summary it writes."""
    torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    began = time.perf_counter()
    check_dagger_data(cfg)

    # 1-2. mapped samples
    samples, mapping = make_samples(
        cfg.data,
        cfg.actions(),
        cfg.obs_size,
        cfg.history_len,
        cfg.max_steps,
        pool,
        perceived_network=cfg.perceived_network(),
    )
    train_idx, val_idx = split_photos(samples.photo, cfg.val_fraction, cfg.seed)
    logger.info(
        "BC on %d samples (%d held out); mapping %s",
        len(samples.action),
        len(val_idx),
        {k: v for k, v in mapping.items() if k != "per_tool"},
    )

    # 3. policy, perception
    labels = sorted({name for names in samples.labels for name in names})
    if cfg.init:
        policy, spec = load_policy(cfg.init)
        _check_init(spec, cfg)
    else:
        spec = PolicySpec(
            catalogue=tuple(cfg.catalogue),
            obs_size=cfg.obs_size,
            history_len=cfg.history_len,
            action_space=cfg.action_space,
            bins=cfg.bins,
            n_params=cfg.n_params,
            perceived=cfg.perceived_network(),
            features={
                "channels": list(cfg.channels),
                "history_dim": cfg.history_dim,
                "n_labels": len(labels),
                "freeze": cfg.freeze_perception,
                **(
                    {"perceived_dim": perceived.WIDTH}
                    if cfg.perceived or cfg.perceived_truth
                    else {}
                ),
            },
            net_arch={"pi": list(cfg.net_arch), "vf": list(cfg.net_arch)},
            extra={},
        )
        policy = build_policy(spec)
        if cfg.perception_epochs > 0:
            targets = torch.tensor(
                [[float(name in names) for name in labels] for names in samples.labels]
            )
            pretrain_perception(
                _features(policy),
                torch.from_numpy(samples.inputs),
                targets,
                cfg.perception_epochs,
                cfg.seed,
            )

    # 4. clone
    rng = np.random.default_rng(cfg.seed)
    log, kept = clone(policy, samples, train_idx, val_idx, cfg, cfg.epochs, rng)
    rounds: list[dict[str, Any]] = []
    for number in range(1, cfg.dagger_rounds + 1):
        samples, row = dagger_round(policy, samples, cfg, rng, pool)
        train_idx, val_idx = split_photos(samples.photo, cfg.val_fraction, cfg.seed)
        more, kept = clone(policy, samples, train_idx, val_idx, cfg, cfg.dagger_epochs, rng)
        rounds.append({"round": number, **row, "samples": len(samples.action), "last": more[-1]})
        logger.info("DAgger round %d: %s", number, rounds[-1])
        log.extend({**r, "round": number} for r in more)

    # 5. export
    summary: dict[str, Any] = {
        "samples": len(samples.action),
        "episodes": len(samples.inputs),
        "train_samples": len(train_idx),
        "val_samples": len(val_idx),
        "mapping": mapping,
        "action_counts": dict(Counter(_label(a) for a in samples.action).most_common()),
        "first": log[0],
        "last": log[-1],
        "kept_epoch": kept,  # of the last round's passes with DAgger (0: as it came in)
        **({"dagger": rounds} if rounds else {}),
        "seconds": round(time.perf_counter() - began, 1),
    }
    extra = dict(spec.extra)
    extra.update(
        {
            "bc": summary,
            "perception": {"labels": labels},
            "num_timesteps": 0,
            "config": _jsonable(cfg),
            "command": command,
        }
    )
    export_policy(policy, dataclasses.replace(spec, extra=extra), cfg.out)
    Path(cfg.out).with_suffix(".log.jsonl").write_text("".join(json.dumps(r) + "\n" for r in log))
    return summary


def clone(
    policy: Any,
    samples: Samples,
    train_idx: np.ndarray,
    val_idx: np.ndarray,
    cfg: BCConfig,
    epochs: int,
    rng: np.random.Generator,
) -> tuple[list[dict[str, Any]], int]:
    """Fit the policy to the samples' actions for ``epochs`` passes; the log and kept epoch.

    With held-out photos the epoch with the lowest held-out loss is kept (a few hundred
    episodes overfit within tens of epochs; epoch 0 is the policy as it came in); without,
    the last.

    Args:
        policy: The SB3 policy (trained in place).
        samples: The samples (weighted by ``samples.weight`` when set).
        train_idx: Samples to fit.
        val_idx: Held-out samples (may be empty).
        cfg: Batch size and step size.
        epochs: Passes over ``train_idx``.
        rng: Shuffles the passes.

    Returns:
        The per-epoch log (losses and accuracies) and the kept epoch.
    """
    params = [p for p in policy.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(params, lr=cfg.lr)
    policy.eval()
    dist_of = Distributions(policy, samples, frozen=cfg.freeze_perception)
    log: list[dict[str, Any]] = [_evaluate(dist_of, samples, train_idx, val_idx, epoch=0)]
    best = (log[0].get("val_loss", math.inf), 0, copy.deepcopy(policy.state_dict()))
    for epoch in range(1, epochs + 1):
        policy.train()
        order = rng.permutation(train_idx)
        for start in range(0, len(order), cfg.batch_size):
            idx = order[start : start + cfg.batch_size]
            mask, weight = _mask(samples, idx), _weight(samples, idx)
            loss = _nll(dist_of(idx), samples.action[idx], mask, weight)
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            optimizer.step()
        policy.eval()
        log.append(_evaluate(dist_of, samples, train_idx, val_idx, epoch))
        logger.info("epoch %d: %s", epoch, log[-1])
        if len(val_idx) and log[-1]["val_loss"] < best[0]:
            best = (log[-1]["val_loss"], epoch, copy.deepcopy(policy.state_dict()))
    if len(val_idx):
        policy.load_state_dict(best[2])
    return log, best[1] if len(val_idx) else epochs


def dagger_round(
    policy: Any,
    samples: Samples,
    cfg: BCConfig,
    rng: np.random.Generator,
    pool: ToolPool | None = None,
) -> tuple[Samples, dict[str, Any]]:
    """One DAgger round (:mod:`agents.ppo.dagger`): the samples with the clone's states added.

    Returns:
        The extended samples, and the round's report: episodes run, states labelled, and how
        often the clone already did what oracle would (on the training and held-out photos).

    Raises:
        ExpertDataError: a dataset was not collected with ``--expert oracle`` (or
            ``oracle-table``), or the datasets were collected by both.
    """
    from agents.ppo import dagger

    teacher = dagger_teacher(cfg)
    plans = DAGGER_TEACHERS[teacher]
    actions = cfg.actions()
    added: dict[str, list[Any]] = {}
    per_folder = max(1, cfg.dagger_episodes // len(cfg.data))
    episodes = 0
    for folder in cfg.data:
        records = experts.load_records(folder)
        pick = rng.permutation(len(records))[:per_folder]
        episodes += len(pick)
        env = TIREnv(**experts.env_kwargs(experts.config_of(folder)), pool=pool)
        rows = dagger.rollout_rows(
            policy,
            env,
            [records[i] for i in sorted(pick)],
            actions,
            cfg.obs_size,
            cfg.history_len,
            cfg.max_steps,
            cfg.perceived_network(),
            regret=cfg.dagger_cost > 0,
            plans=plans,
            teacher="oracle" if teacher == "oracle-table" else teacher,
        )
        for key, values in rows.items():
            added.setdefault(key, []).extend(values)
    # The held-out photos are the base samples' (the rollouts may not visit every photo).
    _, held_idx = split_photos(samples.photo, cfg.val_fraction, cfg.seed)
    held = {samples.photo[i] for i in held_idx}
    agree = np.asarray(added["agree"], dtype=bool)
    on_held = np.array([photo in held for photo in added["photo"]], dtype=bool)
    report = {
        "episodes": episodes,
        "states": len(agree),
        **({"mean_regret_db": float(np.mean(added["regret"]))} if "regret" in added else {}),
        "agreement_train": float(agree[~on_held].mean()) if (~on_held).any() else None,
        "agreement_val": float(agree[on_held].mean()) if on_held.any() else None,
    }
    if "regret" in added:
        added["weight"] = [1.0 + cfg.dagger_cost * r for r in added["regret"]]
    return extend(samples, added, actions, cfg.perceived_network()), report


#: The experts DAgger can ask in any state, and the plans each teaches (``perceived``: the
#: prior plan of what perception sees, :func:`agents.ppo.dagger.perceived_next`).
DAGGER_TEACHERS: dict[str, PlansChoice] = {
    "oracle": "default",
    "oracle-table": "table",
    "perceived": "default",
    "perceived-reader": "default",
}


def check_dagger_data(cfg: BCConfig) -> PlansChoice:
    """The teacher's plans, refusing datasets it did not make (:func:`dagger_teacher`)."""
    return DAGGER_TEACHERS[dagger_teacher(cfg)]


def dagger_teacher(cfg: BCConfig) -> str:
    """The expert DAgger asks, refusing datasets it did not make (the labels would mix experts).

    DAgger asks the expert that made the datasets: ``oracle``, ``oracle-table`` (oracle
    with the plans fitted per combination) or ``perceived`` (oracle's plan for what
    perception sees); every dataset must be the same one's.

    Raises:
        ExpertDataError: naming the dataset and its expert.
    """
    if not cfg.dagger_rounds:
        return "oracle"
    made = {str(folder): experts.config_of(folder).expert for folder in cfg.data}
    for folder, made_by in made.items():
        if made_by not in DAGGER_TEACHERS:
            raise ExpertDataError(
                f"{folder} holds {made_by}'s episodes; DAgger asks an expert in the clone's "
                "states, so clone one that can answer there (tir experts collect --expert "
                "oracle, oracle-table, perceived or perceived-reader)"
            )
    teachers = set(made.values())
    if len(teachers) > 1:
        raise ExpertDataError(
            f"the datasets were made by {sorted(teachers)}; DAgger asks one teacher, so pass "
            "datasets of one expert"
        )
    teacher = teachers.pop() if teachers else "oracle"
    if teacher.startswith("perceived") and cfg.dagger_cost > 0:
        raise ExpertDataError(
            "--dagger-cost finishes episodes with oracle; the perceived expert's datasets "
            "take plain DAgger (drop --dagger-cost)"
        )
    return teacher


def extend(
    samples: Samples,
    rows: dict[str, list[Any]],
    actions: PolicyActions,
    perceived_network: str | None,
) -> Samples:
    """``samples`` with the rows of new states added (episode inputs and labels unchanged).

    Args:
        samples: The samples so far.
        rows: :func:`agents.ppo.dagger.rollout_rows`' lists (``truth``: each state's true
            types), with ``weight`` when weighted.
        actions: The policy's action space (for ``params`` masks).
        perceived_network: The perception network of the observations, if any.

    Returns:
        New samples; rows without a weight weigh 1.
    """
    image, source = np.stack(rows["image"]), np.stack(rows["input"])
    action = np.asarray(rows["action"], dtype=np.int64)
    new_perceived = None
    if perceived_network is not None:
        new_perceived = perceived.observations(image, source, perceived_network, rows["truth"])
    weight = None
    if samples.weight is not None or "weight" in rows:
        old = samples.weight if samples.weight is not None else np.ones(len(samples.action))
        new = rows.get("weight", [1.0] * len(action))
        weight = np.concatenate([old, np.asarray(new)]).astype(np.float32)
    mask = None
    if samples.mask is not None and isinstance(actions, ParamActions):
        mask = np.concatenate([samples.mask, np.stack([actions.mask(a) for a in rows["action"]])])
    return dataclasses.replace(
        samples,
        image=np.concatenate([samples.image, image]),
        input=np.concatenate([samples.input, source]),
        history=np.concatenate([samples.history, np.stack(rows["history"]).astype(np.float32)]),
        action=np.concatenate([samples.action, action.reshape((-1, *samples.action.shape[1:]))]),
        episode=np.concatenate([samples.episode, np.asarray(rows["ep"], dtype=np.int64)]),
        photo=[*samples.photo, *rows["photo"]],
        mask=mask,
        weight=weight,
        perceived=(
            None
            if samples.perceived is None or new_perceived is None
            else np.concatenate([samples.perceived, new_perceived])
        ),
    )


def _evaluate(
    dist_of: Distributions,
    samples: Samples,
    train_idx: np.ndarray,
    val_idx: np.ndarray,
    epoch: int,
) -> dict[str, Any]:
    row: dict[str, Any] = {"epoch": epoch}
    with torch.no_grad():
        for name, idx in (("train", train_idx), ("val", val_idx)):
            if len(idx):
                dist = dist_of(idx)
                row[f"{name}_loss"] = float(
                    _nll(dist, samples.action[idx], _mask(samples, idx), _weight(samples, idx))
                )
                row[f"{name}_accuracy"] = _hits(dist, samples.action[idx], _mask(samples, idx))
    return row


def _mask(samples: Samples, idx: np.ndarray) -> np.ndarray | None:
    return None if samples.mask is None else samples.mask[idx]


def _weight(samples: Samples, idx: np.ndarray) -> np.ndarray | None:
    return None if samples.weight is None else samples.weight[idx]


def _label(action: np.ndarray) -> int | str:
    """A JSON key of one action: the catalogue index, or ``tool,bin,bin``."""
    flat = np.asarray(action).reshape(-1)
    return int(flat[0]) if flat.size == 1 else ",".join(str(int(v)) for v in flat)


def _check_init(spec: PolicySpec, cfg: BCConfig) -> None:
    if spec.spaces()[1] != cfg.actions().space() or spec.action_space != cfg.action_space:
        raise ExpertDataError(
            f"--init {cfg.init}: its action space ({spec.action_space}, {spec.spaces()[1]}) "
            f"differs from this run's ({cfg.action_space}, {cfg.actions().space()}); pass the "
            "same --action-space, --bins and --n-params or start fresh"
        )
    if tuple(spec.catalogue) != tuple(cfg.catalogue) or spec.obs_size != cfg.obs_size:
        raise ExpertDataError(
            f"--init {cfg.init}: its catalogue or obs_size ({spec.obs_size}) differ from this "
            f"run's ({cfg.obs_size}); pass the same --obs-size or start fresh"
        )
    if spec.history_len != cfg.history_len:
        raise ExpertDataError(
            f"--init {cfg.init} has history_len {spec.history_len}, this run {cfg.history_len}"
        )
    if spec.perceived != cfg.perceived_network():
        raise ExpertDataError(
            f"--init {cfg.init} reads perception {spec.perceived!r}, this run "
            f"{cfg.perceived_network()!r}; pass --perceived (or --perceived-truth) as it was "
            "trained or start fresh"
        )


def _features(policy: Any) -> TIRFeatures:
    extractor = policy.features_extractor
    if not isinstance(extractor, TIRFeatures):
        raise TypeError(f"expected TIRFeatures, got {type(extractor).__name__}")
    return extractor


def _jsonable(cfg: BCConfig) -> dict[str, Any]:
    data = {f.name: getattr(cfg, f.name) for f in dataclasses.fields(cfg)}
    data["catalogue"] = [str(c) for c in cfg.catalogue]
    return {k: list(v) if isinstance(v, tuple) else v for k, v in data.items()}


# ------------------------------------------------------------------------------ warm start
def init_policy_kwargs(stem: str | Path) -> dict[str, Any]:
    """SB3 ``policy_kwargs`` that rebuild an exported policy's architecture (for ``--init``)."""
    spec = load_spec(stem)
    return {
        "features_extractor_class": TIRFeatures,
        "features_extractor_kwargs": dict(spec.features),
        "net_arch": {k: list(v) for k, v in spec.net_arch.items()},
    }


def warm_start(model: Any, stem: str | Path) -> None:
    """Copy an exported policy's weights into an SB3 model (``tir train ppo --init STEM``).

    Raises:
        ExpertDataError: the policy's observation or action space differs from the model's
            (another catalogue, ``obs_size`` or ``history_len``).
    """
    policy, spec = load_policy(stem)
    observation, action = spec.spaces()
    if observation != model.observation_space or action != model.action_space:
        raise ExpertDataError(
            f"--init {stem}: its spaces ({observation}, {action}) differ from this run's "
            f"({model.observation_space}, {model.action_space}); train PPO with the same "
            "catalogue, --action-space (--bins, --n-params), --obs-size and --history-len"
        )
    model.policy.load_state_dict(policy.state_dict())


# ------------------------------------------------------------------------------ CLI
def parse_args(argv: Sequence[str] | None = None) -> BCConfig:
    """``--field value`` for every :class:`BCConfig` field but the catalogue."""
    return parse_with_catalogue(BCConfig, argv, "tir train ppo-bc")


def cli(argv: Sequence[str] | None = None) -> int:
    """Entry point: parse options, run, print the summary."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    words = list(sys.argv[1:] if argv is None else argv)
    summary = main(parse_args(words), command="tir train ppo-bc " + " ".join(words))
    sys.stdout.write(json.dumps({k: v for k, v in summary.items()}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(cli())
