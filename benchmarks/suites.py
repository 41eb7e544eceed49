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
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from typing import Any

from benchmarks.evaluate import EpisodeSpec
from tir_env import data
from tir_env.degradations.protocols import COMBOS, SEVERITIES, Combo
from tir_env.errors import UnknownNameError, did_you_mean


@dataclass(frozen=True)
class Suite:
    """A frozen benchmark definition.

    Attributes:
        name: Suite name (also the env's ``combos``).
        version: Bumped whenever inputs or scoring change.
        combos: Degradation combinations.
        seeds_per_pair: Episodes per (image, combination).
        patch_size: Side of the clean square crop.
        max_steps: Tool-call budget per episode.
        metrics: Metrics recorded before and after.
        description: One line for ``tir suites``.
    """

    name: str
    version: str
    combos: tuple[Combo, ...]
    seeds_per_pair: int = 1
    patch_size: int = 128
    max_steps: int = 5
    metrics: tuple[str, ...] = ("psnr", "ssim", "niqe")
    description: str = ""
    env_overrides: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)

    def episodes(self, images: str = "test", limit: int | None = None) -> list[EpisodeSpec]:
        """Every episode of the suite on an image source, in a fixed order.

        Seeds are a hash of (suite, version, image, combination, k), so adding images or
        agents never changes existing episodes.
        """
        ids = data.source(images).ids[:limit] if limit else data.source(images).ids
        return [
            EpisodeSpec(image, combo, self._seed(image, combo, k))
            for image in ids
            for combo in self.combos
            for k in range(self.seeds_per_pair)
        ]

    def env_kwargs(self, images: str = "test") -> dict[str, Any]:
        """Keyword arguments of the env that plays this suite."""
        return dict(
            images=images,
            combos=self.name if self.name in SEVERITIES else self.combos,
            patch_size=self.patch_size,
            obs_size=64,
            max_steps=self.max_steps,
            metrics=self.metrics,
            **self.env_overrides,
        )

    def _seed(self, image: str, combo: Combo, k: int) -> int:
        key = f"{self.name}|{self.version}|{image}|{'+'.join(combo)}|{k}"
        return zlib.crc32(key.encode())


def _make_suites() -> dict[str, Suite]:
    suites = {
        name: Suite(name, "1", COMBOS[name], description=text)
        for name, text in [
            ("mio-a", "AgenticIR MiO100 group A: 8 in-domain pairs"),
            ("mio-b", "AgenticIR MiO100 group B: 4 unseen pairs"),
            ("mio-c", "AgenticIR MiO100 group C: 4 triples"),
            ("ood-d2", "16 out-of-domain pairs (in none of groups A-C)"),
            ("ood-d3", "8 out-of-domain triples"),
        ]
    }
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


def get_suite(name: str) -> Suite:
    """The suite called ``name`` (did-you-mean on unknown names)."""
    if name not in SUITES:
        raise UnknownNameError(
            f"unknown suite {name!r}.{did_you_mean(name, SUITES)} Suites: {', '.join(SUITES)}."
        )
    return SUITES[name]
