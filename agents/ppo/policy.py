"""Export and load a trained PPO policy as safetensors + JSON (no pickle), and find checkpoints.

SB3's own ``.zip`` checkpoints (written while training, used by ``--resume``) keep the optimizer
and counters but deserialise parts of themselves with cloudpickle; the shipped policy is the
actor-critic's tensors in safetensors and everything needed to rebuild it in a JSON file:

``<stem>.safetensors``
    The ``ActorCriticPolicy`` state dict.
``<stem>.json``
    ``format``, ``action_space`` (``catalogue`` or ``params``, :mod:`agents.ppo.actions`;
    absent in policies written before it existed, which are ``catalogue``), ``catalogue``
    (the tool calls of actions 1..C, 0 is STOP; for ``params``, its tools are the policy's),
    ``bins`` and ``n_params`` (``params`` only), ``perceived`` (the perception network whose
    readings the observation carries, :mod:`agents.ppo.perceived`; absent: none),
    ``obs_size``, ``history_len``, ``features``
    (:class:`~agents.ppo.features.TIRFeatures` arguments), ``net_arch``, ``num_timesteps``,
    ``config`` (the training config) and ``command``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agents.ppo.actions import ActionSpaceKind, PolicyActions, make_actions
from tir_env.errors import TIRError, WeightsNotFoundError
from tir_env.files import atomic_path
from tir_env.types import ToolCall

FORMAT = "tir-ppo-policy/1"


@dataclass(frozen=True)
class PolicySpec:
    """What a stored policy needs besides its tensors.

    Attributes:
        catalogue: Tool calls of actions ``1 .. C`` (action 0 is STOP).
        obs_size: Side of the observation images.
        history_len: Rows of the action history.
        features: Keyword arguments of ``TIRFeatures``.
        net_arch: SB3 ``net_arch`` of the actor and critic heads.
        extra: Everything else in the JSON (config, command, num_timesteps).
        action_space: ``catalogue`` (presets) or ``params`` (tools of ``catalogue`` with
            chosen parameters).
        bins: Bins per parameter (``params`` only).
        n_params: Parameters chosen per tool (``params`` only).
        perceived: The perception network whose readings the observation carries under
            ``perceived`` (:mod:`agents.ppo.perceived`), or ``None``.
    """

    catalogue: tuple[ToolCall, ...]
    obs_size: int
    history_len: int
    features: dict[str, Any]
    net_arch: dict[str, list[int]]
    extra: dict[str, Any]
    action_space: ActionSpaceKind = "catalogue"
    bins: int = 9
    n_params: int = 2
    perceived: str | None = None

    @property
    def train_patch(self) -> int:
        """Side of the crops the policy was trained on (recorded by PPO; else ``obs_size``).

        Behaviour cloning trains on expert data whose crops are ``obs_size`` (128) wide.
        """
        config = self.extra.get("config")
        patch = config.get("patch_size") if isinstance(config, dict) else None
        return int(patch) if patch else self.obs_size

    def actions(self) -> PolicyActions:
        """The policy's actions: how an action becomes a tool call and a history row."""
        return make_actions(self.action_space, self.catalogue, self.bins, self.n_params)

    def spaces(self) -> tuple[Any, Any]:
        """The policy's observation and action spaces."""
        import numpy as np
        from gymnasium import spaces

        actions = self.actions()
        image = spaces.Box(0, 255, shape=(3, self.obs_size, self.obs_size), dtype=np.uint8)
        width = self.history_len * actions.row_width()
        history = spaces.Box(0.0, 1.0, shape=(width,), dtype=np.float32)
        return observation_space(image, history, self.perceived), actions.space()

    def to_json(self) -> dict[str, Any]:
        """The JSON record (without the tensors)."""
        space: dict[str, Any] = {"action_space": self.action_space}
        if self.action_space == "params":
            space.update(bins=self.bins, n_params=self.n_params)
        if self.perceived is not None:
            space["perceived"] = self.perceived
        return {
            "format": FORMAT,
            **space,
            "catalogue": [c.to_dict() for c in self.catalogue],
            "obs_size": self.obs_size,
            "history_len": self.history_len,
            "features": self.features,
            "net_arch": self.net_arch,
            **self.extra,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PolicySpec:
        """Inverse of :meth:`to_json` (no ``action_space``: a catalogue policy)."""
        known = {"format", "catalogue", "obs_size", "history_len", "features", "net_arch"}
        known |= {"action_space", "bins", "n_params", "perceived"}
        features = dict(data["features"])
        if "channels" in features:
            features["channels"] = tuple(features["channels"])
        return cls(
            catalogue=tuple(ToolCall.from_dict(c) for c in data["catalogue"]),
            obs_size=int(data["obs_size"]),
            history_len=int(data["history_len"]),
            features=features,
            net_arch={k: list(v) for k, v in data["net_arch"].items()},
            extra={k: v for k, v in data.items() if k not in known},
            action_space=data.get("action_space", "catalogue"),
            bins=int(data.get("bins", 9)),
            n_params=int(data.get("n_params", 2)),
            perceived=data.get("perceived"),
        )


def observation_space(image: Any, history: Any, perceived: str | None) -> Any:
    """The policy's ``Dict`` observation space (``perceived``: with perception's readings)."""
    from gymnasium import spaces

    from agents.ppo import perceived as readings

    parts = {"image": image, "input": image, "history": history}
    if perceived is not None:
        parts[readings.KEY] = readings.space()
    return spaces.Dict(parts)


def build_policy(spec: PolicySpec) -> Any:
    """A fresh SB3 ``MultiInputActorCriticPolicy`` shaped by ``spec`` (CPU, eval mode)."""
    from stable_baselines3.common.policies import MultiInputActorCriticPolicy

    from agents.ppo.features import TIRFeatures

    observation_space, action_space = spec.spaces()
    policy = MultiInputActorCriticPolicy(
        observation_space,
        action_space,
        lr_schedule=lambda _: 0.0,
        net_arch=spec.net_arch,
        features_extractor_class=TIRFeatures,
        features_extractor_kwargs=spec.features,
    )
    return policy.eval()


def export_policy(policy: Any, spec: PolicySpec, stem: str | Path) -> tuple[Path, Path]:
    """Write ``<stem>.safetensors`` and ``<stem>.json``; return both paths."""
    from safetensors.torch import save_model

    stem = Path(stem)
    tensors, meta = stem.with_suffix(".safetensors"), stem.with_suffix(".json")
    # Both complete before either is renamed: a kill leaves the old pair or the new one.
    with atomic_path(tensors) as tmp_tensors, atomic_path(meta) as tmp_meta:
        # save_model stores tensors the actor and critic share (one features extractor) once.
        save_model(policy.cpu(), str(tmp_tensors))
        tmp_meta.write_text(json.dumps(spec.to_json(), indent=2, sort_keys=True) + "\n")
    return tensors, meta


def load_policy(stem: str | Path) -> tuple[Any, PolicySpec]:
    """Rebuild and load a policy written by :func:`export_policy`.

    Raises:
        WeightsNotFoundError: ``<stem>.safetensors`` or ``<stem>.json`` is missing.
        TIRError: the files are not a TIR PPO policy or do not fit each other.
    """
    from safetensors.torch import load_model

    stem = Path(stem)
    tensors, meta = stem.with_suffix(".safetensors"), stem.with_suffix(".json")
    _require(tensors, stem)
    spec = load_spec(stem)
    policy = build_policy(spec)
    try:
        load_model(policy, str(tensors), strict=True)
    except RuntimeError as err:
        raise TIRError(f"{tensors} does not fit the policy described by {meta}: {err}") from None
    return policy, spec


def load_spec(stem: str | Path) -> PolicySpec:
    """The :class:`PolicySpec` of an exported policy, from its JSON alone (no tensors read).

    Raises:
        WeightsNotFoundError: ``<stem>.json`` is missing.
        TIRError: it is not a TIR PPO policy.
    """
    meta = Path(stem).with_suffix(".json")
    _require(meta, Path(stem))
    data = json.loads(meta.read_text())
    if data.get("format") != FORMAT:
        raise TIRError(f"{meta} is not a TIR PPO policy (format {data.get('format')!r})")
    return PolicySpec.from_json(data)


#: Spec fields every member of an ensemble must share: they see one observation and their
#: actions mean the same calls.
ENSEMBLE_FIELDS = (
    "action_space",
    "catalogue",
    "bins",
    "n_params",
    "obs_size",
    "history_len",
    "perceived",
    "train_patch",
)


def check_ensemble(specs: Sequence[PolicySpec], stems: Sequence[str | Path]) -> None:
    """Raise unless every policy of an ensemble has the first one's observation and actions.

    Raises:
        TIRError: a member differs in one of :data:`ENSEMBLE_FIELDS` (named in the message).
    """
    for spec, stem in zip(specs[1:], stems[1:], strict=True):
        for field in ENSEMBLE_FIELDS:
            if getattr(spec, field) != getattr(specs[0], field):
                raise TIRError(
                    f"PPO ensemble: {stem} differs from {stems[0]} in {field!r}; every "
                    "member must see the same observation and share its actions (train "
                    "them with the same --action-space, catalogue and sizes)"
                )


def mean_action_probabilities(
    policies: Sequence[Any], observations: dict[str, Any] | Sequence[dict[str, Any]]
) -> list[Any]:
    """Action probabilities averaged over every policy and observation, one array per dim.

    ``observations`` is one observation or several views of the same state (tiles of a
    whole photo); each policy reads each view. A ``Discrete`` space has one dimension,
    ``MultiDiscrete`` one per component (tool, then each parameter's bin), each averaged on
    its own.
    """
    import numpy as np
    import torch

    views = [observations] if isinstance(observations, dict) else list(observations)
    totals: list[Any] = []
    with torch.no_grad():
        for policy in policies:
            for obs in views:
                tensor, _ = policy.obs_to_tensor(obs)
                dist = policy.get_distribution(tensor).distribution
                parts = dist if isinstance(dist, list) else [dist]
                probs = [part.probs[0].double().numpy() for part in parts]
                totals = (
                    probs if not totals else [a + b for a, b in zip(totals, probs, strict=True)]
                )
    return [np.asarray(total / (len(policies) * len(views))) for total in totals]


def ensemble_action(
    policies: Sequence[Any],
    observations: dict[str, Any] | Sequence[dict[str, Any]],
    rng: Any | None = None,
) -> Any:
    """The action of the averaged probabilities: the likeliest, or drawn with ``rng``.

    Averaged over ``policies`` and ``observations`` (:func:`mean_action_probabilities`).
    Returns an ``int`` (``Discrete``) or an int array (``MultiDiscrete``), as SB3's
    ``predict`` would for one observation.
    """
    import numpy as np

    probs = mean_action_probabilities(policies, observations)
    if rng is None:
        picks = [int(np.argmax(p)) for p in probs]
    else:
        picks = [int(rng.choice(len(p), p=p / p.sum())) for p in probs]
    return np.asarray(picks[0]) if len(picks) == 1 else np.asarray(picks, dtype=np.int64)


def _require(path: Path, stem: Path) -> None:
    if not path.is_file():
        raise WeightsNotFoundError(
            f"PPO policy file not found: {path}. Train one with `tir train ppo --export "
            f"{stem}` (RL) or `tir train ppo-bc --out {stem}` (behaviour cloning; see "
            "docs/agents.md), or pass weights=<stem> to the agent."
        )


def last_checkpoint(folder: str | Path, exclude: Collection[Path] = ()) -> Path | None:
    """The SB3 checkpoint ``ppo_<steps>_steps.zip`` with the most steps in ``folder``.

    Args:
        folder: Checkpoint folder.
        exclude: Checkpoints to pass over (found damaged).
    """
    found = []
    for path in Path(folder).glob("ppo_*_steps.zip"):
        match = re.fullmatch(r"ppo_(\d+)_steps\.zip", path.name)
        if match and path not in exclude:
            found.append((int(match.group(1)), path))
    return max(found)[1] if found else None
