"""Degradations: the eight AgenticIR MiO100 types and RL-Restore's three leveled types."""

from tir_env.degradations.base import (
    DEGRADATIONS,
    PROTOCOL_ORDER,
    Degradation,
    DegradationInfo,
    degradation_names,
    degrade,
    make_degradation,
    protocol_sorted,
    register_degradation,
    replay,
)

__all__ = [
    "DEGRADATIONS",
    "PROTOCOL_ORDER",
    "Degradation",
    "DegradationInfo",
    "degradation_names",
    "degrade",
    "make_degradation",
    "protocol_sorted",
    "register_degradation",
    "replay",
]
