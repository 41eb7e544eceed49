"""The Degradation contract, the registry and the combination helper.

A degradation turns a clean float32 1x3xHxW image in [0, 1] into a degraded one.
Its randomness is split in two so every degraded input can be reproduced from a record:

* ``sample(rng)`` draws concrete parameters (including an integer ``seed`` for any pixel
  noise) from a caller's :class:`numpy.random.Generator`;
* ``apply(batch, params)`` is deterministic given those parameters.

Output keeps the input's shape, except ``low_resolution`` (``info.downscale = 4``: H/4 x W/4).
Combinations are applied either in the physical order (each degradation's
``info.physical_order``) whatever order they are named in (``order="physical"``, the training
default) or in the order they are listed (``order="listed"``, what AgenticIR's
``synthesize.py`` does and what the MiO100 suites use).

Register a degradation class with :func:`register_degradation` (keyed on ``info.name``). The
built-ins are the degradations registered in any module of this package, found on the first
lookup; third-party packages add theirs through the entry-point group ``tir.degradations``
(``docs/extending.md``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, TypeVar

import numpy as np
import torch

from tir_env.errors import ImageError
from tir_env.images import check_batch
from tir_env.registry import Registry

#: How a combination is ordered before it is applied: sorted by physical order, or
#: as listed (AgenticIR applies ``degradations.txt``'s combinations in their listed order).
DegradationOrder = Literal["physical", "listed"]
DEGRADATION_ORDERS: tuple[DegradationOrder, ...] = ("physical", "listed")


@dataclass(frozen=True)
class DegradationInfo:
    """Metadata a degradation declares next to itself.

    Attributes:
        name: Registry name (e.g. ``"motion_blur"``).
        task: The restoration task that removes it (e.g. ``"motion_deblurring"``).
        group: ``scene``, ``imaging`` or ``compression`` (MAIR's prior).
        physical_order: Where it happens in the physical order of degradation (scene ->
            imaging -> compression): combinations are synthesised in increasing order and a
            sensible restoration removes them in reverse. The built-ins use 0 (haze) to 10
            (jpeg_quality); a plug-in slots in between with a fraction (e.g. 6.5).
        protocol: ``agenticir`` (MiO100 types) or ``rlrestore`` (leveled types).
        downscale: Input size over output size (4 for ``low_resolution``, else 1).
        description: One line with the published parameters.
    """

    name: str
    task: str
    group: Literal["scene", "imaging", "compression"]
    physical_order: float
    protocol: Literal["agenticir", "rlrestore"] = "agenticir"
    downscale: int = 1
    description: str = ""


class Degradation(ABC):
    """Base class of every degradation (see the module docstring)."""

    info: DegradationInfo

    @abstractmethod
    def sample(self, rng: np.random.Generator) -> dict[str, float]:
        """Draw concrete parameters from ``rng`` (published ranges)."""

    @abstractmethod
    def apply(self, batch: torch.Tensor, params: Mapping[str, float]) -> torch.Tensor:
        """Degrade a float32 Nx3xHxW batch deterministically with ``params``."""

    def severity(self, params: Mapping[str, float]) -> float:
        """How strong a draw is: 0 = the mildest published value, 1 = the strongest.

        The main parameter (noise sigma, JPEG quality, blur radius, rain density, ...) mapped
        linearly over its published range; perception learns to predict it, and tools and
        agents use it to set their parameters. A degradation without a free parameter
        (``low_resolution``) is always 1.
        """
        return 1.0

    def with_depth(self, depth: np.ndarray | None) -> Degradation:
        """This degradation given the scene's depth map (HxW in [0, 1], 1 = farthest).

        Scene degradations that depend on depth (haze) return a copy that uses it; the
        rest ignore it. The map is the clean image's (:mod:`tir_env.degradations.depth`).
        """
        return self

    def __call__(
        self, batch: torch.Tensor, rng: np.random.Generator
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """Sample parameters, apply them, check the output; return (image, params)."""
        check_batch(batch)
        params = self.sample(rng)
        out = self.apply(batch, params)
        n, c, h, w = batch.shape
        d = self.info.downscale
        if tuple(out.shape) != (n, c, h // d, w // d) or not torch.isfinite(out).all():
            raise ImageError(f"degradation {self.info.name!r} broke its output contract")
        return out.to(torch.float32).clamp(0, 1), params


DegradationFactory = Callable[[], Degradation]
DEGRADATIONS: Registry[DegradationFactory] = Registry(
    "degradation", entry_point_group="tir.degradations", builtins=("tir_env.degradations",)
)

_D = TypeVar("_D", bound=type[Degradation])


def register_degradation(cls: _D) -> _D:
    """Class decorator: register a :class:`Degradation` under ``cls.info.name``."""
    return DEGRADATIONS.register(cls)


def make_degradation(name: str) -> Degradation:
    """Build the degradation called ``name`` (did-you-mean on unknown names)."""
    return DEGRADATIONS.get(name)()


def degradation_names(protocol: str | None = None) -> list[str]:
    """Registered degradation names, optionally only one protocol's."""
    names = DEGRADATIONS.names()
    return [n for n in names if protocol is None or make_degradation(n).info.protocol == protocol]


def physical_order(name: str) -> float:
    """``info.physical_order`` of degradation ``name``.

    Raises:
        UnknownNameError: no such degradation (with a did-you-mean hint).
    """
    factory = DEGRADATIONS.get(name)
    info = getattr(factory, "info", None)
    return (info if isinstance(info, DegradationInfo) else factory().info).physical_order


def protocol_order() -> list[str]:
    """Every registered degradation name in physical order (scene, imaging, compression)."""
    return protocol_sorted(DEGRADATIONS.names())


def protocol_sorted(names: Sequence[str]) -> list[str]:
    """Sort degradation names into physical order (stable for equal orders).

    Raises:
        UnknownNameError: a name is not a registered degradation.
    """
    return sorted(names, key=physical_order)


def ordered(names: Sequence[str], order: DegradationOrder = "physical") -> list[str]:
    """The names in the order a combination applies them (see :data:`DegradationOrder`).

    Raises:
        ValueError: ``order`` is not one of :data:`DEGRADATION_ORDERS`.
    """
    if order not in DEGRADATION_ORDERS:
        raise ValueError(f"unknown degradation order {order!r}; choose one of {DEGRADATION_ORDERS}")
    return protocol_sorted(names) if order == "physical" else list(names)


def degrade(
    clean: torch.Tensor,
    names: Sequence[str],
    rng: np.random.Generator,
    order: DegradationOrder = "physical",
    depth: np.ndarray | None = None,
) -> tuple[torch.Tensor, list[tuple[str, dict[str, float]]]]:
    """Apply a combination of degradations in physical or listed order.

    Args:
        clean: float32 1x3xHxW in [0, 1]; H and W divisible by 4 if ``low_resolution`` is used.
        names: Degradation names, no repeats.
        rng: Source of every random draw.
        order: ``"physical"`` sorts ``names`` by physical order; ``"listed"``
            applies them as given (AgenticIR's protocol).
        depth: Depth map of ``clean`` (HxW, 1 = farthest) for haze; ``None``: haze's proxy.

    Returns:
        The degraded image and the applied ``(name, params)`` list, in application order.
    """
    if len(set(names)) != len(names):
        raise ValueError(f"degradation combination has repeats: {list(names)}")
    image, applied = clean, []
    for name in ordered(names, order):
        image, params = make_degradation(name).with_depth(depth)(image, rng)
        applied.append((name, params))
    return image, applied


def replay(
    clean: torch.Tensor,
    applied: Sequence[tuple[str, Mapping[str, float]]],
    depth: np.ndarray | None = None,
) -> torch.Tensor:
    """Re-apply a recorded ``(name, params)`` list exactly (no randomness; same ``depth``)."""
    image = clean
    for name, params in applied:
        image = make_degradation(name).with_depth(depth).apply(image, params).clamp(0, 1)
    return image
