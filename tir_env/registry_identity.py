"""Who a registered component is: its definition, module and name, and who registers it.

The :class:`~tir_env.registry.Registry` uses these to tell a built-in registration from a
user's (by who registers, never by where the component's class is defined), to name both
components in a clash, and to recognise a re-run notebook cell.
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


def registering_module() -> str | None:
    """The module whose import runs the current registration, if one does.

    The innermost module executing its body (a decorator or call at import time): a
    registration made from a built-in module's body is TIR's own. ``None`` when no module body
    is on the stack (a call from a thread, say): that is no module's import, so nobody's
    built-in, whatever class the component uses.
    """
    frame: FrameType | None = sys._getframe(1)
    while frame is not None:
        if frame.f_code.co_name == "<module>":
            name = frame.f_globals.get("__name__")
            if isinstance(name, str):
                return name
        frame = frame.f_back
    return None


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
