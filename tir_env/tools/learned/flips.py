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
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

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


#: Blocks inside :func:`single_pass` now running (process-wide: the tool pool runs a call on
#: another thread than the one that entered the block).
_SINGLE_PASS = 0
_SINGLE_PASS_LOCK = threading.Lock()


@contextmanager
def single_pass() -> Iterator[None]:
    """Every learned tool runs its network once inside the block, whatever its spec or :data:`ENV`.

    ``tir restore --fast``: on a rainy 6028x3391 camera photo the run takes 20 s against 32 s
    with the deraining's four copies (docs/agents.md, "Where tir restore's time goes").

    It holds in this process only: the local and synchronous pools, whose calls run here (a
    Ray pool's actors keep their own flips). The pool keys its cache by :func:`cache_tag` when
    a call is submitted, so submit and wait for the calls inside the block, as ``tir restore``
    does.
    """
    global _SINGLE_PASS
    with _SINGLE_PASS_LOCK:
        _SINGLE_PASS += 1
    try:
        yield
    finally:
        with _SINGLE_PASS_LOCK:
            _SINGLE_PASS -= 1


def cache_tag() -> str:
    """What the tool pool adds to an image's cache key: ``""`` unless flips are overridden.

    A result made with other flips (inside :func:`single_pass`, or under another :data:`ENV`)
    is another result: the process-wide pool must not hand one back for the other.
    """
    if _SINGLE_PASS:
        return "|flips=single"
    text = os.environ.get(ENV, "").strip()
    return f"|flips={text}" if text else ""


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

    ``""`` (one pass, no mirrored copy) inside :func:`single_pass`.

    Raises:
        ConfigValueError: the mode is unknown, or flips upside down a network that reads each
            pixel's vertical position.
    """
    if _SINGLE_PASS:
        return ""
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
