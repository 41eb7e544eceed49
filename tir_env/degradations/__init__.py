"""Degradations: the eight AgenticIR MiO100 types and RL-Restore's three leveled types."""

from tir_env.degradations.base import (
    DEGRADATION_ORDERS,
    DEGRADATIONS,
    Degradation,
    DegradationInfo,
    DegradationOrder,
    degradation_names,
    degrade,
    make_degradation,
    ordered,
    physical_order,
    protocol_order,
    protocol_sorted,
    register_degradation,
    replay,
)

__all__ = [
    "DEGRADATIONS",
    "DEGRADATION_ORDERS",
    "Degradation",
    "DegradationInfo",
    "DegradationOrder",
    "degradation_names",
    "degrade",
    "make_degradation",
    "ordered",
    "physical_order",
    "protocol_order",
    "protocol_sorted",
    "register_degradation",
    "replay",
]
