"""Frozen, versioned benchmark suites.

A suite fixes the degradation combinations, the clean images (the bundled test photos by
default; ``--images DIR`` for MiO100, DIV2K or your own), the seeds and the step budget, so
every agent sees byte-identical degraded inputs. Changing anything that changes inputs or
scoring means a new ``version``.

========================  =====================================================  ======
suite                     combinations                                            steps
========================  =====================================================  ======
``mio-a``                 AgenticIR MiO100 group A (8 pairs, in-domain)           5
``mio-b``                 group B (4 unseen pairs)                                5
``mio-c``                 group C (4 triples)                                     5
``ood-d2``                the 16 pairs in none of A-C                             5
``ood-d3``                8 triples outside A-C                                   5
``rlrestore-mild``        RL-Restore blur+noise+JPEG, level sum 9-11              3
``rlrestore-moderate``    level sum 12-17 (RL-Restore's training severity)        3
``rlrestore-severe``      level sum 18-20                                         3
``single``                each of the 8 types alone                               3
========================  =====================================================  ======

The MiO100 suites (``mio-a``, ``mio-b``, ``mio-c``, version 2) apply each combination in its
listed order, as AgenticIR's ``synthesize.py`` does; the others apply the physical order
(:func:`~tir_env.degradations.base.protocol_order`): their combinations are ours, listed
alphabetically by type, so a listed order would mean nothing. Records name the order used.

Sizes: ``mio-a`` degrades 128 px crops (the published suites' training-style setting);
``mio-a@full`` runs the same suite on whole photos (degraded whole, scored whole, any size and
aspect), ``mio-a@256`` on 256 px crops. ``tir bench --whole`` / ``--patch-size N`` say the same.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field, replace
from typing import Any

from benchmarks.evaluate import EpisodeSpec
from tir_env import data
from tir_env.degradations.base import DegradationOrder
from tir_env.degradations.protocols import COMBOS, SEVERITIES, Combo
from tir_env.errors import ConfigValueError, UnknownNameError, did_you_mean


@dataclass(frozen=True)
class Suite:
    """A frozen benchmark definition.

    Attributes:
        name: Suite name (also the env's ``combos``).
        version: Bumped whenever inputs or scoring change.
        combos: Degradation combinations.
        seeds_per_pair: Episodes per (image, combination).
        patch_size: Side of the clean square crop; ``None``: whole photos.
        max_steps: Tool-call budget per episode.
        metrics: Metrics recorded before and after.
        description: One line for ``tir suites``.
        order: How combinations are applied: ``"listed"`` (AgenticIR) or ``"physical"``.
        env_overrides: Extra env keyword arguments.
    """

    name: str
    version: str
    combos: tuple[Combo, ...]
    seeds_per_pair: int = 1
    patch_size: int | None = 128
    max_steps: int = 5
    metrics: tuple[str, ...] = ("psnr", "ssim", "niqe")
    description: str = ""
    order: DegradationOrder = "physical"
    env_overrides: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)

    def episodes(self, images: str = "test", limit: int | None = None) -> list[EpisodeSpec]:
        """Every episode of the suite on an image source, in a fixed order.

        Seeds are a hash of (suite, version, image, combination, k), so adding images or
        agents never changes existing episodes.

        Args:
            images: The clean-image source (see :func:`tir_env.data.source`).
            limit: Only the first ``limit`` images; ``None`` or 0: every image (as
                ``tir bench --limit 0`` and ``benchmarks.heldout_rounds --limit 0``).

        Raises:
            ConfigValueError: a negative ``limit`` (it would drop the last images).
        """
        if limit is not None and limit < 0:
            raise ConfigValueError(f"limit must be 0 (every image) or more, got {limit}")
        ids = data.source(images).ids[:limit] if limit else data.source(images).ids
        return [
            EpisodeSpec(image, combo, self.seed(image, combo, k))
            for image in ids
            for combo in self.combos
            for k in range(self.seeds_per_pair)
        ]

    def env_kwargs(self, images: str = "test") -> dict[str, Any]:
        """Keyword arguments of the env that plays this suite."""
        return dict(
            images=images,
            combos=self.base_name if self.base_name in SEVERITIES else self.combos,
            patch_size=self.patch_size,
            degradation_order=self.order,
            obs_size=64,
            max_steps=self.max_steps,
            metrics=self.metrics,
            **self.env_overrides,
        )

    def at_size(self, patch_size: int | None) -> Suite:
        """This suite on crops of another size (``None``: whole photos), named ``name@size``.

        The name carries the size, so records and tables of different sizes never mix.
        """
        if patch_size == self.patch_size:
            return self
        tag = "full" if patch_size is None else str(patch_size)
        return replace(self, name=f"{self.base_name}@{tag}", patch_size=patch_size)

    @property
    def base_name(self) -> str:
        """The suite's name without an ``@size`` suffix."""
        return self.name.split("@", 1)[0]

    def seed(self, image: str, combo: Combo, k: int) -> int:
        """Seed of the ``k``-th episode of ``combo`` on ``image``.

        ``k`` may pass ``seeds_per_pair``: :func:`benchmarks.ab_test.round_episodes` draws
        further rounds that way.
        """
        key = f"{self.name}|{self.version}|{image}|{'+'.join(combo)}|{k}"
        return zlib.crc32(key.encode())


#: Metrics of the MiO100 suites: AgenticIR's (pyiqa RGB PSNR, YIQ SSIM) and BasicSR's
#: Y-channel PSNR/SSIM (4KAgent's), so numbers compare with either family of papers.
MIO_METRICS = ("psnr", "ssim", "psnr_y", "ssim_y", "niqe")


def _make_suites() -> dict[str, Suite]:
    # Version 2 of the MiO100 suites: listed order (was physical) and Y-channel columns.
    suites = {
        name: Suite(name, "2", COMBOS[name], metrics=MIO_METRICS, description=text, order="listed")
        for name, text in [
            ("mio-a", "AgenticIR MiO100 group A: 8 in-domain pairs"),
            ("mio-b", "AgenticIR MiO100 group B: 4 unseen pairs"),
            ("mio-c", "AgenticIR MiO100 group C: 4 triples"),
        ]
    }
    for name, text in [
        ("ood-d2", "16 out-of-domain pairs (in none of groups A-C)"),
        ("ood-d3", "8 out-of-domain triples"),
    ]:
        suites[name] = Suite(name, "1", COMBOS[name], description=text)
    for name, severity in SEVERITIES.items():
        suites[name] = Suite(
            name,
            "1",
            COMBOS[name],
            seeds_per_pair=4,
            patch_size=64,
            max_steps=3,
            description=f"RL-Restore {severity}: Gaussian blur + noise + JPEG levels",
        )
    suites["single"] = Suite(
        "single", "1", COMBOS["single"], max_steps=3, description="each AgenticIR degradation alone"
    )
    return suites


SUITES: dict[str, Suite] = _make_suites()


def protocol_suite(name: str) -> Suite:
    """A benchmark suite, or a training protocol of ``COMBOS`` (``train-d3``) played as one.

    A training protocol with no suite of its own is played as a 128 px suite in the
    physical order, the env's default (how agents train on it); ``NAME@full`` or
    ``NAME@SIZE`` at another size, as for :func:`get_suite`.

    Raises:
        UnknownNameError: neither a suite nor a protocol (with did-you-mean), or a malformed
            ``@`` size.
    """
    base, _, size = name.partition("@")
    if base in SUITES or base not in COMBOS:
        return get_suite(name)
    return _sized(Suite(base, "1", COMBOS[base], description="a training protocol"), size, name)


def get_suite(name: str) -> Suite:
    """The suite called ``name``; ``NAME@full`` or ``NAME@SIZE`` for other image sizes.

    Raises:
        UnknownNameError: an unknown suite (with did-you-mean) or a malformed ``@`` size.
    """
    base, _, size = name.partition("@")
    if base not in SUITES:
        raise UnknownNameError(
            f"unknown suite {base!r}.{did_you_mean(base, SUITES)} Suites: {', '.join(SUITES)}."
        )
    return _sized(SUITES[base], size, name)


def _sized(suite: Suite, size: str, name: str) -> Suite:
    """``suite`` at the ``@`` size of ``name`` (``""``: as it is; ``full``: whole photos).

    Raises:
        UnknownNameError: a size that is neither ``full`` nor a multiple of 4 from 8.
    """
    if not size:
        return suite
    if size == "full":
        return suite.at_size(None)
    if not size.isdigit() or int(size) < 8 or int(size) % 4:
        raise UnknownNameError(
            f"suite size {size!r} in {name!r}: use @full (whole photos) or @N with N a "
            "multiple of 4, at least 8 (e.g. mio-a@256)"
        )
    return suite.at_size(int(size))
