"""The parameters the prior plan runs each preferred tool with.

The preferred tools' declared defaults come from the literature (AgenticIR's gamma 1.5, He et
al.'s omega 0.95, ...). ``agents/tuned_params.json``, written by ``python -m
benchmarks.tune_params`` from the suites' episodes on the corpus' train photos, holds the
values that fit the protocol's degradations better (docs/agents.md, "Parameters fitted to the
protocol"). ``fixed``, ``exhaustive`` and ``greedy`` run their prior plan with them
(``params="tuned"``, their default); ``params="default"`` runs the declared defaults, as
``oracle`` and ``exhaustive-ref`` do. The learned agents (``ppo``, ``vlm``) take the same
option: :func:`with_tuned_params` swaps the fitted values in where a policy calls a preferred
tool with its declared defaults.
"""

from __future__ import annotations

import functools
import json
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import numpy as np

from tir_env.errors import ConfigValueError, UnknownNameError
from tir_env.tools.base import tool_info
from tir_env.types import ToolCall

#: Where the fitted table lives (committed; regenerate with ``benchmarks.tune_params``).
TUNED_FILE = Path(__file__).with_name("tuned_params.json")
#: Environment variable naming another table to run instead (``benchmarks.ab_test
#: --tuned-b``: a refitted table against the shipped one under the same agent).
TUNED_ENV = "TIR_TUNED_PARAMS"
#: ``default``: the tools' declared defaults; ``tuned``: :data:`TUNED_FILE`'s values.
ParamsChoice = Literal["default", "tuned"]


def tuned_file() -> Path:
    """The table in force: ``$TIR_TUNED_PARAMS`` where set, else :data:`TUNED_FILE`."""
    return Path(os.environ.get(TUNED_ENV) or TUNED_FILE)


def tuned_params(path: Path | None = None) -> Mapping[str, Mapping[str, float]]:
    """Tool -> the fitted parameters that differ from its defaults, checked against its spec.

    ``path``: the table to read (default :func:`tuned_file`, read once per path).

    Raises:
        ConfigValueError: the file is missing, not JSON, or names a tool, a parameter or a
            value the registry does not accept (regenerate it with ``python -m
            benchmarks.tune_params``).
    """
    return _read_table(path or tuned_file(), "params")


def alone_params(path: Path | None = None) -> Mapping[str, Mapping[str, float]]:
    """Tool -> the values fitted for plans of that one call (the table's ``alone`` section).

    A tool's pooled values (:func:`tuned_params`) are fitted over every plan it runs in, most
    of them with other calls, where a stronger setting also mops up what the others leave
    (``jpeg_tv``'s TV weight, 0.05, smooths a missed noise away); alone, on a photo with one
    degradation, the same setting flattens what the photo holds. ``python -m
    benchmarks.tune_params --context alone`` fits them on the plans of one call alone. Empty
    for a table without the section.

    Raises:
        ConfigValueError: as :func:`tuned_params`.
    """
    return _read_table(path or tuned_file(), "alone")


@functools.cache
def _read_table(path: Path, section: str) -> Mapping[str, Mapping[str, float]]:
    """One section of a table file, checked (cached by path); ``alone`` may be absent."""
    fix = f"regenerate it with `python -m benchmarks.tune_params --out {path}`"
    try:
        raw = json.loads(path.read_text())
        table = raw.get(section, {}) if section == "alone" else raw[section]
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as err:
        raise ConfigValueError(f"tuned parameters {path} unreadable ({err}); {fix}") from err
    if not isinstance(table, dict):
        raise ConfigValueError(f"tuned parameters {path}: {section!r} is not a table; {fix}")
    return {tool: _checked(tool, params, path, fix) for tool, params in table.items()}


def _checked(tool: str, params: object, path: Path, fix: str) -> Mapping[str, float]:
    """``params`` of ``tool`` as floats, each within its declared range."""
    try:
        spec = tool_info(tool).params
    except UnknownNameError as err:  # its message suggests the nearest registered tool
        raise ConfigValueError(f"tuned parameters {path}: {err}; {fix}") from err
    if not isinstance(params, dict):
        raise ConfigValueError(f"tuned parameters {path}: {tool} has no parameter table; {fix}")
    out = {}
    for name, value in params.items():
        if name not in spec:
            raise ConfigValueError(
                f"tuned parameters {path}: {tool} has no parameter {name!r}; {fix}"
            )
        if not isinstance(value, int | float) or not math.isfinite(value):
            raise ConfigValueError(f"tuned parameters {path}: {tool}.{name}={value!r}; {fix}")
        if not spec[name].low <= value <= spec[name].high:
            raise ConfigValueError(
                f"tuned parameters {path}: {tool}.{name}={value} is outside "
                f"[{spec[name].low}, {spec[name].high}]; {fix}"
            )
        out[name] = float(value)
    return out


def prior_call(tool: str, choice: ParamsChoice = "default", alone: bool = False) -> ToolCall:
    """The call the prior plan makes of ``tool``: its defaults, or the fitted values.

    ``alone``: the plan holds this call alone, so the table's values for that case
    (:func:`alone_params`) apply where it has them (``tuned`` only).
    """
    if choice != "tuned":
        return ToolCall(tool, {})
    if alone and tool in alone_params():
        return ToolCall(tool, alone_params()[tool])
    return ToolCall(tool, tuned_params().get(tool, {}))


#: The denoiser :func:`gentle_denoise` retunes, and its threshold as a multiple of the flattest
#: blocks' noise level (rule c1195e6: on the train photos' phone, faint and mild noise copies it
#: gains as much as the fitted strength, and leaves clean photos with grain 3-6 dB nearer
#: their originals).
GENTLE_TOOL, GENTLE_LEVELS = "dct_denoise", 2.0


def gentle_denoise(call: ToolCall, image: np.ndarray) -> ToolCall:
    """``call`` with :data:`GENTLE_TOOL`'s strength set from ``image``'s flattest blocks.

    The tool thresholds at ``3 strength sigma_hat``, its own estimate of the noise, which a
    photo's texture raises; for noise read from the flattest blocks
    (:func:`tir_env.photo_thresholds.noise_by_level`) the strength becomes
    ``GENTLE_LEVELS * level / sigma_hat`` (``level``: :func:`tir_env.noise_level.noise_level`),
    clipped to the parameter's range, so the threshold follows the noise and not the texture.
    Other calls, and images where either estimate is 0, are returned unchanged.
    """
    from tir_env.noise_level import noise_level
    from tir_env.tools.classical._common import estimate_noise_sigma

    if call.tool != GENTLE_TOOL:
        return call
    level = noise_level(image)
    sigma = estimate_noise_sigma(image.astype(np.float32) / 255.0) * 255.0
    if level <= 0.0 or sigma <= 0.0:
        return call
    bounds = tool_info(GENTLE_TOOL).params["strength"]
    strength = min(max(GENTLE_LEVELS * level / sigma, bounds.low), bounds.high)
    return ToolCall(call.tool, {**call.params, "strength": strength})


def gentle_image(env: Any) -> np.ndarray | None:
    """``env``'s input (uint8) where its whole photo's noise was read from the flat blocks only.

    ``None`` elsewhere: on a crop, without perception's weights, or where the network's own
    reading found the noise (:func:`tir_env.photo_thresholds.noise_by_level`). The image is
    what :func:`gentle_denoise` reads the strength on.
    """
    from tir_env import perception, photo_thresholds
    from tir_env.images import batch_to_u8

    photo, size = env.perception_input()
    if min(photo.shape[:2]) < photo_thresholds.WHOLE_MIN_SIDE or not perception.available():
        return None
    if not photo_thresholds.noise_by_level(perception.perceive_photo(photo, size).thresholds):
        return None
    return batch_to_u8(env.current_batch())


def with_tuned_params(call: ToolCall | None) -> ToolCall | None:
    """A learned policy's call with the fitted values where it asks for the declared defaults.

    A call of a tool in the fitted table that sets none of its parameters, or sets each to
    its declared default, becomes that tool's fitted call (the values it does not fit keep
    the call's); any other call (another tool, a value the policy chose) and STOP (``None``)
    are returned unchanged. The learned agents' ``params="tuned"`` option runs this on each
    call, so a policy trained on the declared defaults runs the preferred tools as ``fixed``
    does.
    """
    if call is None or call.tool not in tuned_params():
        return call
    spec = tool_info(call.tool).params
    if any(name in spec and value != spec[name].default for name, value in call.params.items()):
        return call
    return ToolCall(call.tool, {**call.params, **tuned_params()[call.tool]})
