"""The ``agenticir`` agent: AgenticIR's inference loop (``pipeline/iragent.py``) on TIR's toolbox.

AgenticIR (Zhu et al., ICLR 2025) restores an image in five stages; this agent follows each
with TIR's pieces (perception v2, :mod:`tir_env.perception`, stands in for DepictQA):

1. **Perception.** The degradations perception sees in the input (``Perception.present``, at
   the size the restored image should have) become the agenda, one subtask (task) each.
2. **Scheduling.** The agenda is ordered by MAIR's prior (:func:`prior_order`: compression
   first, scene last, the order ``fixed`` uses) or, when one is configured, by a
   :class:`Planner` (``planner="api-vlm"``: a VLM behind an OpenAI-compatible API,
   :class:`APIVLMPlanner`). A planner answer that is not a permutation of the agenda (unknown
   or missing tasks) is replaced by the prior order, with a warning.
3. **Execution.** Per subtask, the env's tools of that task are tried one at a time in a
   random order (seeded by the agent seed and the episode's input, so the same episode gets
   the same order). After each tool, perception looks at the result: when the subtask's
   degradation is gone (presence below its tuned threshold: AgenticIR's "very low") the
   result is accepted at once and the remaining tools are not run (early stop).
4. **Reflection.** When no tool is accepted, the results are graded on AgenticIR's five
   levels (:data:`LEVELS`; present degradations by their predicted severity, quartiles of
   0-1) and the best is kept (lowest level, then highest predicted PSNR, as AgenticIR
   compares candidates by quality). A best result at "low" is a success; "medium" or worse
   fails the subtask.
5. **Rollback and rescheduling.** A failed subtask is rolled back: the image before it is
   restored and the subtask goes back into the plan, which is rescheduled so that a subtask
   not yet tried at this point comes first. When every remaining subtask has failed at a
   point, the agent backtracks one more subtask. When every order from the input has failed,
   it compromises as AgenticIR does: it jumps to the best failed result (by predicted PSNR)
   and finishes the remaining subtasks from there, keeping each subtask's best result.

The loop ends when the plan is empty, the path reaches the env's ``max_steps``, or
``max_executions`` tool executions have been spent. The chosen path is then replayed through
``env.step``.

Cost accounting: ``tool_executions`` counts every tool execution the agent requests through
``env.lookahead`` (the shared pool), including those of rolled-back subtasks and of tools
whose result was rejected; the replay of the chosen path through ``env.step`` is answered by
the pool's cache and not counted again (``owns_execution_count``, the same convention as the
``exhaustive`` and ``greedy`` search agents). ``episode_extra`` adds ``rollbacks``,
``reschedules``, ``compromise``, ``initial_plan``, ``subtasks_executed``,
``perception_calls``, ``planner`` and ``planner_errors`` to each record (plus the API
planner's token and request counts when one is used).

Differences from ``iragent.py`` (stated, not hidden): DepictQA is replaced by perception v2
(levels from presence and severity); GPT-4's schedule and its distilled experience by MAIR's
prior order or an optional VLM planner; AgenticIR's "longer side < 300 px -> super-resolution"
rule by perception at the target size; after a compromise the agent does not roll back
again (AgenticIR may, over the same finite tree); and ``max_executions`` bounds the search.
"""

from __future__ import annotations

import json
import logging
import re
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any, Literal, Protocol

import numpy as np
import torch

from agents.base import AgentOptions, PlanAgent, episode_digest, register_agent
from tir_env.config_cli import config_from_mapping
from tir_env.errors import InvalidParameterError, UnknownConfigFieldError, did_you_mean
from tir_env.images import batch_to_u8, image_digest
from tir_env.perception import Perception
from tir_env.tools.base import tool_info
from tir_env.types import TASKS, ImageU8, ToolCall

log = logging.getLogger(__name__)

#: AgenticIR's severity levels, best first (``iragent.py``'s ``self.levels``).
LEVELS: tuple[str, ...] = ("very low", "low", "medium", "high", "very high")
#: Planner names accepted by the ``planner`` option.
PlannerName = Literal["prior", "api-vlm"]
PLANNERS: tuple[str, ...] = ("prior", "api-vlm")

#: Perception of one image: ``(image, size the restored image should have) -> Perception``.
PerceiveFn = Callable[[ImageU8, "tuple[int, int] | None"], Perception]


class Planner(Protocol):
    """Orders the subtasks of an agenda (AgenticIR's scheduler).

    Called with the image the subtasks will run on, the tasks to order and the tasks that
    have already failed from this image (empty for the first schedule). Returns the tasks in
    the order to run them; anything that is not a permutation of ``tasks`` is replaced by the
    prior order (with a warning).
    """

    def __call__(
        self, image: ImageU8, tasks: Sequence[str], failed: Sequence[str]
    ) -> Sequence[str]:
        """The tasks in execution order."""
        ...


def prior_order(tasks: Sequence[str]) -> list[str]:
    """MAIR's prior: the tasks in reverse physical order (compression first, scene last)."""
    return [t for t in reversed(TASKS) if t in tasks]


def task_types() -> dict[str, str]:
    """Task -> the AgenticIR degradation type it removes (``denoising`` -> ``noise``)."""
    from tir_env.degradations import make_degradation
    from tir_env.degradations.protocols import AGENTICIR_TYPES

    return {make_degradation(n).info.task: n for n in AGENTICIR_TYPES}


def level(seen: Perception, kind: str) -> int:
    """AgenticIR's severity level (index into :data:`LEVELS`) of degradation ``kind``.

    0 ("very low": gone) when its presence is below its threshold; otherwise 1-4 from the
    predicted severity in quartiles (under 0.25: "low", the level AgenticIR still accepts).
    """
    if seen.probs.get(kind, 0.0) < seen.thresholds.get(kind, 0.5):
        return 0
    return 1 + min(3, int(max(0.0, seen.severity.get(kind, 1.0)) * 4))


@dataclass(frozen=True)
class AgenticIRConfig(AgentOptions):
    """Options of the ``agenticir`` agent.

    Other options go to the ``api-vlm`` planner (:class:`agents.vlm.remote.APIVLMOptions`:
    ``base_url``, ``model``, ...) and need ``planner=api-vlm``.

    Attributes:
        max_executions: Most tool executions per episode, rolled-back ones included (the
            search budget; the full tree of three subtasks with the classical toolbox needs
            at most about 50).
        compromise: When every order fails, continue from the best failed result
            (AgenticIR); ``False`` keeps the input instead.
        planner: ``prior`` (MAIR's prior order; also ``None``) or ``api-vlm``
            (:class:`APIVLMPlanner`).
    """

    max_executions: int = 64
    compromise: bool = True
    planner: PlannerName | None = "prior"

    def __post_init__(self) -> None:
        """Validate the options.

        Raises:
            InvalidParameterError: a budget under 1 or an unknown planner.
        """
        if self.max_executions < 1:
            raise InvalidParameterError(
                f"agenticir: max_executions must be >= 1, got {self.max_executions}"
            )
        if self.planner is not None and self.planner not in PLANNERS:
            raise InvalidParameterError(
                f"agenticir: planner must be one of {', '.join(PLANNERS)}, got {self.planner!r}"
            )


_OWN_OPTIONS = frozenset(f.name for f in fields(AgenticIRConfig))


@dataclass(eq=False)
class _Node:
    """One image of the tree: the input, or the result kept for a subtask from its parent."""

    image: torch.Tensor
    path: tuple[ToolCall, ...] = ()
    tasks: tuple[str, ...] = ()
    parent: _Node | None = None
    quality: float = float("-inf")
    failed: bool = False
    #: Task tried from this node -> the result kept for it (``None``: every tool errored).
    children: dict[str, _Node | None] = field(default_factory=dict)


@register_agent
class AgenticIRAgent(PlanAgent):
    """AgenticIR's perceive-schedule-execute-reflect-rollback loop (see the module docstring).

    Options are :class:`AgenticIRConfig` (``self.config``); the seed (with the episode's
    input) orders the tools.

    Args:
        seed: Seeds the tool order (with the episode's input).
        planner: ``prior``, ``api-vlm``, or a :class:`Planner` callable.
        perceive: Perception function (default :func:`tir_env.perception.perceive_photo`).
        **options: :class:`AgenticIRConfig` fields, and with ``planner=api-vlm`` the
            options of :class:`APIVLMPlanner` (``base_url``, ``model``, ...).
    """

    name = "agenticir"
    description = (
        "AgenticIR's loop: perceive, schedule, tools in random order with early stop, "
        "rollback and reschedule"
    )
    owns_execution_count = True
    Options = AgenticIRConfig
    options: AgenticIRConfig

    def __init__(
        self,
        seed: int | str = 0,
        planner: str | Planner | None = "prior",
        perceive: PerceiveFn | None = None,
        **options: Any,
    ) -> None:
        custom = None if planner is None or isinstance(planner, str) else planner
        super().__init__(seed, planner=None if custom else planner, **options)
        self.config = self.options
        self.planner: Planner | None = custom
        self.planner_name = "custom" if custom else self.config.planner or "prior"
        if self.planner_name == "api-vlm":
            planner_args = {k: v for k, v in options.items() if k not in _OWN_OPTIONS}
            self.planner = APIVLMPlanner(self.seed, **planner_args)
        self._perceive_fn = perceive
        self._types = task_types()
        self._kinds = {kind: task for task, kind in self._types.items()}
        self._reset_accounting()

    @classmethod
    def parse_options(cls, values: Mapping[str, Any]) -> AgenticIRConfig:
        """Own options by type; the rest must be ``api-vlm`` planner options.

        Raises:
            UnknownConfigFieldError: an option that is neither (with a did-you-mean), or
                planner options without ``planner=api-vlm``.
            ConfigValueError: a value that does not fit its option's type.
        """
        own = {k: v for k, v in values.items() if k in _OWN_OPTIONS}
        config = config_from_mapping(AgenticIRConfig, own, f"agent {cls.name!r}")
        rest = {k: v for k, v in values.items() if k not in _OWN_OPTIONS}
        if rest and config.planner != "api-vlm":
            key = sorted(rest)[0]
            raise UnknownConfigFieldError(
                f"agent 'agenticir': unknown option {key!r}; options: "
                f"{', '.join(sorted(_OWN_OPTIONS))} (planner options such as base_url need "
                "planner=api-vlm)." + did_you_mean(key, _OWN_OPTIONS)
            )
        if rest:
            from agents.vlm.remote import APIVLMAgent

            config_from_mapping(APIVLMAgent.Options, rest, "agenticir's api-vlm planner")
        return config

    # ------------------------------------------------------------------ protocol
    def reset(self, env: Any = None, info: dict[str, Any] | None = None) -> None:
        """Start an episode: seed the tool order, then run the loop and plan its replay."""
        self._reset_accounting()
        env_u = getattr(env, "unwrapped", env)
        # Seeded by the episode (not its pixels, whose last bits differ between CPUs), so the
        # same episode gets the same order in any run order and on any machine.
        self.rng = np.random.default_rng([self.seed, episode_digest(env_u, info)])
        super().reset(env, info)

    def episode_extra(self) -> dict[str, Any]:
        """The loop's accounting, merged into the episode's JSONL record."""
        extra: dict[str, Any] = {
            "rollbacks": self.rollbacks,
            "reschedules": self.reschedules,
            "compromise": self.compromised,
            "initial_plan": list(self.initial_plan),
            "subtasks_executed": self.subtasks_executed,
            "perception_calls": self.perception_calls,
            "planner": self.planner_name,
            "planner_errors": self.planner_errors,
        }
        if isinstance(self.planner, APIVLMPlanner):
            extra.update(self.planner.accounting())
        return extra

    def make_plan(self) -> Sequence[ToolCall]:
        """Run AgenticIR's loop from the episode's input; the tool calls of the kept path."""
        return self.search(self.env.current_batch()).path

    # ------------------------------------------------------------------ the loop
    def search(self, image: torch.Tensor) -> _Node:
        """Perceive, schedule, execute with rollback; the node whose path is replayed."""
        root = _Node(image)
        seen = self.perceive(image)
        root.quality = seen.psnr
        agenda = [self._task(k) for k in seen.present if self._task(k) in self._tasks_offered()]
        plan = self.schedule(root, agenda, failed=())
        self.initial_plan[:] = plan
        node, compromised = root, False
        limit = self.env.config.max_steps
        while plan and len(node.path) < limit and self._budget_left():
            task = plan.pop(0)
            self._note("execute", task, node)
            child, ok = self.execute(node, task)
            node.children[task] = child
            if child is not None and (ok or compromised):
                node = child
                continue
            if compromised:  # no result at all for this subtask: go on without it
                continue
            if not self._budget_left():  # the budget ran out inside this subtask
                break
            # Rollback: the image before the subtask is restored (we stay at ``node``) and
            # the subtask goes back into the plan.
            self.rollbacks += 1
            plan.insert(0, task)
            while set(plan) <= set(node.children) and node.parent is not None:
                plan.insert(0, node.tasks[-1])  # every remaining subtask failed here
                node = node.parent
            self._note("rollback", task, node)
            if set(plan) <= set(node.children):  # every order from the input failed
                best = self._best_failed(root)
                if not self.config.compromise or best is None:
                    break
                node, compromised, self.compromised = best, True, True
                self._note("compromise", best.tasks[-1], node)
                plan = self.schedule(node, [t for t in agenda if t not in node.tasks], ())
                continue
            plan = self.reschedule(node, plan)
        return node

    def execute(self, node: _Node, task: str) -> tuple[_Node | None, bool]:
        """Try ``task``'s tools on ``node`` in random order; (kept result, success).

        Stops at the first result in which the degradation is gone. Otherwise keeps the best
        result (lowest level, then highest predicted PSNR); success when it is at most "low".
        """
        self.subtasks_executed += 1
        kind = self._types[task]
        tools = [t for t in self.env.tools if tool_info(t).task == task]
        graded: list[tuple[int, _Node]] = []
        for index in self.rng.permutation(len(tools)):
            if not self._budget_left():
                break
            call = ToolCall(tools[int(index)], {})
            out = self.env.lookahead(node.image, [call])[0]
            self.tool_executions += 1
            if out is None:  # the tool failed: counted, not a candidate
                continue
            seen = self.perceive(out)
            child = _Node(out, (*node.path, call), (*node.tasks, task), node, seen.psnr)
            grade = level(seen, kind)
            log.debug("agenticir: %s -> %s (%s)", call.tool, LEVELS[grade], task)
            if grade == 0:
                return child, True
            graded.append((grade, child))
        if not graded:
            return None, False
        grade, best = min(graded, key=lambda g: (g[0], -g[1].quality))
        best.failed = grade > 1
        return best, not best.failed

    def schedule(self, node: _Node, tasks: Sequence[str], failed: Sequence[str]) -> list[str]:
        """Order ``tasks``: the planner's order when it is valid, else MAIR's prior order."""
        prior = prior_order(tasks)
        if self.planner is None or len(tasks) <= 1:
            return prior
        try:
            answer = list(self.planner(batch_to_u8(node.image), prior, list(failed)))
        except Exception as err:  # a planner must never crash the episode
            answer, why = [], f"{type(err).__name__}: {err}"
        else:
            why = f"{answer!r} is not a permutation of {prior}"
        if sorted(answer) == sorted(prior):
            return answer
        self.planner_errors += 1
        warnings.warn(
            f"agenticir: planner answer rejected ({why}); using the prior order", stacklevel=3
        )
        return prior

    def reschedule(self, node: _Node, plan: Sequence[str]) -> list[str]:
        """A new order for ``plan`` at ``node`` whose first subtask has not failed there yet."""
        self.reschedules += 1
        tried = [t for t in plan if t in node.children]
        order = self.schedule(node, plan, failed=tried)
        first = next(t for t in order if t not in node.children)  # the caller ensures one
        return [first, *(t for t in order if t != first)]

    def perceive(self, image: torch.Tensor) -> Perception:
        """Perception of a working image at the size the restored image should have."""
        self.perception_calls += 1
        if self._perceive_fn is None:
            from tir_env.perception import perceive_photo

            return perceive_photo(batch_to_u8(image), self.env.target_size())
        return self._perceive_fn(batch_to_u8(image), self.env.target_size())

    # ------------------------------------------------------------------ helpers
    def _reset_accounting(self) -> None:
        self.rollbacks = 0
        self.reschedules = 0
        self.compromised = False
        self.initial_plan: list[str] = []
        self.subtasks_executed = 0
        self.perception_calls = 0
        self.planner_errors = 0
        #: ``(event, task, image digest)``: ``execute`` (the image the subtask starts
        #: from), ``rollback`` (the image restored), ``compromise`` (the image jumped to).
        self.trace: list[tuple[str, str, str]] = []
        if isinstance(getattr(self, "planner", None), APIVLMPlanner):
            self.planner.reset_accounting()  # type: ignore[union-attr]

    def _budget_left(self) -> bool:
        return self.tool_executions < self.config.max_executions

    def _task(self, kind: str) -> str:
        return self._kinds.get(kind, kind)

    def _tasks_offered(self) -> set[str]:
        return {tool_info(t).task for t in self.env.tools}

    @staticmethod
    def _best_failed(root: _Node) -> _Node | None:
        """The failed result with the highest predicted PSNR anywhere in the tree."""
        failed: list[_Node] = []
        stack = [root]
        while stack:
            node = stack.pop()
            kids = [c for c in node.children.values() if c is not None]
            failed.extend(c for c in kids if c.failed)
            stack.extend(kids)
        return max(failed, key=lambda n: n.quality, default=None)

    def _note(self, event: str, task: str, node: _Node) -> None:
        """Append to :attr:`trace`: what happened, to which subtask, on which image."""
        self.trace.append((event, task, image_digest(node.image)))


class APIVLMPlanner:
    """AgenticIR's GPT-4 scheduler as a VLM behind an OpenAI-compatible API.

    It sends the image and the subtasks (and the ones that already failed) and expects a JSON
    list of the subtasks in order. The request goes through :class:`agents.vlm.remote.APIVLMAgent`'s
    client (retries, backoff, concurrency limit, key redaction), so it takes the same options
    (``base_url``, ``model``, ``api_key_env``, ``timeout``, ``retries``, ...). An answer that
    cannot be read returns an empty list, which the agent replaces by the prior order.
    """

    def __init__(self, seed: int = 0, **options: Any) -> None:
        """Build the client (nothing is sent until the first schedule).

        Raises:
            APIConfigError: no ``base_url`` and no ``TIR_API_BASE_URL``.
        """
        from agents.vlm.remote import APIVLMAgent

        self.client = APIVLMAgent(seed=seed, mode="text", **options)

    def __call__(self, image: ImageU8, tasks: Sequence[str], failed: Sequence[str]) -> list[str]:
        """Ask the model for an order of ``tasks``; ``[]`` when there is no usable answer."""
        from agents.vlm.remote import answer_text, encode_png

        text = (
            f"This image needs these restoration subtasks: {json.dumps(list(tasks))}. "
            + (f"Starting with {json.dumps(list(failed))} failed. " if failed else "")
            + "In which order should they run? Answer with only a JSON list of the same "
            "subtask names, first to run first."
        )
        messages: list[dict[str, Any]] = [
            {"role": "system", "content": "You schedule image restoration subtasks."},
            {
                "role": "user",
                "content": [
                    {"type": "image_url", "image_url": {"url": encode_png(image, 512)}},
                    {"type": "text", "text": text},
                ],
            },
        ]
        response = self.client._request(messages, ())
        choices = getattr(response, "choices", None) or []
        return parse_order(answer_text(choices[0].message)) if choices else []

    def accounting(self) -> dict[str, Any]:
        """Token, request and latency counts of this episode (the leaderboard's cost fields)."""
        extra = self.client.episode_extra()
        return {k: extra[k] for k in ("prompt_tokens", "completion_tokens", "requests")} | {
            "api_latency_s": extra["api_latency_s"]
        }

    def reset_accounting(self) -> None:
        """Start an episode's counts."""
        self.client._reset_accounting()


def parse_order(text: str) -> list[str]:
    """The first JSON list of strings in ``text`` (``[]`` when there is none)."""
    match = re.search(r"\[[^\[\]]*\]", text)
    if not match:
        return []
    try:
        value = json.loads(match.group(0))
    except ValueError:
        return []
    return [str(v) for v in value] if isinstance(value, list) else []


__all__ = [
    "LEVELS",
    "AgenticIRAgent",
    "AgenticIRConfig",
    "APIVLMPlanner",
    "Planner",
    "level",
    "parse_order",
    "prior_order",
    "task_types",
]
