"""Test-time flips: a learned tool's output averaged over mirrored copies of its input.

A small network makes errors that do not mirror with the image: run on the input flipped
left-right (and upside down), flipped back and averaged with the plain output, those errors
partly cancel while what the network got right stays. This is the self-ensemble of
restoration papers (EDSR's "+" models), without the transposes: rain streaks fall within 30
degrees of vertical, and a transposed streak is one the network never saw. The classical
prior a hybrid refines runs once and is flipped with the input (the priors mirror with it).

Each :class:`~tir_env.tools.learned.LearnedSpec` names its flips (``flips``: ``""`` none,
``"h"`` left-right, ``"v"`` upside down, ``"hv"`` all four copies); the environment variable
:data:`ENV` overrides them for a run, e.g. ``TIR_LEARNED_FLIPS=learned_deraining=hv`` or
``TIR_LEARNED_FLIPS=none`` (what an A/B test's ``--env-b`` sets). A network that reads each
pixel's vertical position (``coords``) cannot be flipped upside down.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import torch

from tir_env.errors import ConfigValueError

#: Environment variable that overrides the specs' flips: ``none``, or ``NAME=MODE`` entries
#: separated by commas (MODE one of :data:`MODES`; a name not given keeps its spec's).
ENV = "TIR_LEARNED_FLIPS"
#: The copies each mode averages, as the dimensions each copy flips (``()``: the input itself).
MODES: dict[str, tuple[tuple[int, ...], ...]] = {
    "": ((),),
    "h": ((), (-1,)),
    "v": ((), (-2,)),
    "hv": ((), (-1,), (-2,), (-2, -1)),
}


def overrides() -> dict[str, str] | None:
    """The flips :data:`ENV` sets by tool name (``None``: it is unset or empty).

    Raises:
        ConfigValueError: an entry is not ``NAME=MODE`` with MODE one of :data:`MODES`.
    """
    text = os.environ.get(ENV, "").strip()
    if not text:
        return None
    if text == "none":
        return {}
    out: dict[str, str] = {}
    for entry in text.split(","):
        name, sep, mode = entry.strip().partition("=")
        if not sep or not name or mode not in MODES:
            raise ConfigValueError(
                f"{ENV}={text!r}: want 'none' or NAME=MODE entries separated by commas, "
                f"MODE one of {sorted(MODES)} ('' for none); got {entry!r}"
            )
        out[name] = mode
    return out


def mode_for(name: str, spec_mode: str, coords: bool) -> str:
    """The flips tool ``name`` runs with: :data:`ENV`'s where it names the tool, else its spec's.

    Raises:
        ConfigValueError: the mode is unknown, or flips upside down a network that reads each
            pixel's vertical position.
    """
    given = overrides()
    mode = spec_mode if given is None else given.get(name, "" if given == {} else spec_mode)
    if mode not in MODES:
        raise ConfigValueError(f"{name}: flips must be one of {sorted(MODES)}, got {mode!r}")
    if coords and "v" in mode:
        raise ConfigValueError(
            f"{name} reads each pixel's vertical position, so it cannot be flipped upside "
            f"down: use flips 'h' or '' (got {mode!r})"
        )
    return mode


def averaged(
    forward: Callable[[torch.Tensor, torch.Tensor | None], torch.Tensor],
    x: torch.Tensor,
    prior: torch.Tensor | None,
    mode: str,
) -> torch.Tensor:
    """``forward(x, prior)`` averaged over the copies of ``mode``, each flipped back.

    The copies run one after the other (a CPU chunk's memory stays what it was).
    """
    total: torch.Tensor | None = None
    copies = MODES[mode]
    for dims in copies:
        xf = x.flip(dims) if dims else x
        pf = prior.flip(dims) if dims and prior is not None else prior
        out = forward(xf, pf)
        out = out.flip(dims) if dims else out
        # out of place: a forward may hand back a tensor it also holds (its input, a cache)
        total = out if total is None else total + out
    assert total is not None  # every mode has the identity
    return total / len(copies) if len(copies) > 1 else total
