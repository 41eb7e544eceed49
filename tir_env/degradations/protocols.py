"""Published degradation combinations: AgenticIR's MiO100 groups and out-of-domain sets.

Group A (8 combinations, seen during AgenticIR's exploration), group B (4 unseen pairs) and
group C (4 triples) are exactly those of AgenticIR's ``dataset/degradations.txt``
(see ``shared/notes/paper.md`` §8.1). ``OOD_D2``/``OOD_D3`` are the remaining pairs and a
fixed set of triples outside groups A-C, for out-of-domain evaluation. ``rlrestore-*`` are
RL-Restore's Gaussian blur + Gaussian noise + JPEG with level triples of one severity.
``train-d3``/``train`` and :data:`TRAINING` name the combinations agents train on.
"""

from __future__ import annotations

import itertools

Combo = tuple[str, ...]

AGENTICIR_TYPES: tuple[str, ...] = (
    "low_resolution",
    "noise",
    "jpeg",
    "dark",
    "haze",
    "motion_blur",
    "defocus_blur",
    "rain",
)

MIO_GROUP_A: tuple[Combo, ...] = (
    ("rain", "haze"),
    ("motion_blur", "low_resolution"),
    ("dark", "noise"),
    ("defocus_blur", "jpeg"),
    ("noise", "jpeg"),
    ("rain", "low_resolution"),
    ("motion_blur", "dark"),
    ("defocus_blur", "haze"),
)
MIO_GROUP_B: tuple[Combo, ...] = (
    ("motion_blur", "jpeg"),
    ("haze", "noise"),
    ("defocus_blur", "low_resolution"),
    ("rain", "dark"),
)
MIO_GROUP_C: tuple[Combo, ...] = (
    ("haze", "motion_blur", "low_resolution"),
    ("rain", "noise", "low_resolution"),
    ("dark", "defocus_blur", "jpeg"),
    ("motion_blur", "defocus_blur", "noise"),
)
SINGLE: tuple[Combo, ...] = tuple((t,) for t in AGENTICIR_TYPES)


def _unseen(size: int) -> tuple[Combo, ...]:
    known = {frozenset(c) for c in MIO_GROUP_A + MIO_GROUP_B + MIO_GROUP_C}
    combos = itertools.combinations(AGENTICIR_TYPES, size)
    return tuple(c for c in combos if frozenset(c) not in known)


#: Every pair of the eight types that is in none of groups A-C (16 pairs).
OOD_D2: tuple[Combo, ...] = _unseen(2)
#: Eight fixed triples outside groups A-C (every 7th of the 52 unseen triples, stable order).
OOD_D3: tuple[Combo, ...] = _unseen(3)[::7][:8]

#: Training triples: the 44 triples in neither group C nor ``OOD_D3`` (evaluation keeps both
#: unseen). Every pair is in an evaluation suite (A, B or D2), so group A is the only source of
#: training pairs; see :data:`TRAINING`.
TRAIN_D3: tuple[Combo, ...] = tuple(c for c in _unseen(3) if c not in OOD_D3)

#: RL-Restore's test severities: the three leveled types with level triples of that severity.
RLRESTORE_TYPES: Combo = ("gaussian_blur", "gaussian_noise", "jpeg_quality")
SEVERITIES: dict[str, str] = {
    "rlrestore-mild": "mild",
    "rlrestore-moderate": "moderate",
    "rlrestore-severe": "severe",
}

COMBOS: dict[str, tuple[Combo, ...]] = {
    "single": SINGLE,
    "mio-a": MIO_GROUP_A,
    "mio-b": MIO_GROUP_B,
    "mio-c": MIO_GROUP_C,
    "ood-d2": OOD_D2,
    "ood-d3": OOD_D3,
    **{name: (RLRESTORE_TYPES,) for name in SEVERITIES},
    "train-d3": TRAIN_D3,
    "train": SINGLE + MIO_GROUP_A + TRAIN_D3,
}

#: The protocols agents train on (photos are split separately, by photo): each suite's in-domain
#: combinations. ``single`` and group A are AgenticIR's seen types and pairs; ``train-d3`` gives
#: triples without touching group C or ``ood-d3``; ``rlrestore-moderate`` is RL-Restore's
#: training severity (its mild and severe suites are tested on the other level sums).
TRAINING: tuple[str, ...] = ("single", "mio-a", "train-d3", "rlrestore-moderate")
