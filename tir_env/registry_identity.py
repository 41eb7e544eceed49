"""Who a registered component is: its definition, module and name, and who registers it.

The :class:`~tir_env.registry.Registry` uses these to tell a built-in from a user's component,
to name both in a clash, and to recognise a re-run notebook cell.
"""

from __future__ import annotations

import inspect
import sys
from types import FrameType


def definition_of(obj: object) -> object | None:
    """The class or function that defines a component.

    The component itself when it is one, else the class it wraps (a metric's ``MetricSpec``
    holds it as ``cls``); ``None`` for other instances.
    """
    for candidate in (obj, getattr(obj, "cls", None)):
        if inspect.isclass(candidate) or inspect.isroutine(candidate):
            return candidate
    return None


def registering_module(obj: object) -> str:
    """The module a registration runs from.

    The innermost module executing its body (a decorator or call at import time), else (no
    module body on the stack) the one defining ``obj``.
    """
    frame: FrameType | None = sys._getframe(1)
    while frame is not None:
        if frame.f_code.co_name == "<module>":
            name = frame.f_globals.get("__name__")
            if isinstance(name, str):
                return name
        frame = frame.f_back
    return module_of(obj)


def module_of(obj: object) -> str:
    """The module that defines a component (that of its class for a plain instance)."""
    found = definition_of(obj)
    module = getattr(found if found is not None else obj, "__module__", None)
    return module if isinstance(module, str) else ""


def qualified(obj: object) -> str:
    """``module.QualifiedName`` of a component's definition (its repr if it has none)."""
    found = definition_of(obj)
    qualname = getattr(found, "__qualname__", None)
    if found is None or not isinstance(qualname, str):
        return repr(obj)
    return f"{module_of(obj)}.{qualname}"


def same_definition(old: object, new: object) -> bool:
    """Whether two distinct components come from the same definition (a re-run cell)."""
    a, b = definition_of(old), definition_of(new)
    if a is None or b is None or old is new:
        return False
    return (module_of(old), getattr(a, "__qualname__", None)) == (
        module_of(new),
        getattr(b, "__qualname__", None),
    )
