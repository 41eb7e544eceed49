"""One generic registry for tools, degradations, metrics and agents.

Components register next to their definition with a decorator, lazily as a
``"module:attr"`` string, or from a third-party package through an entry-point group.
Lookups of unknown names raise :class:`~tir_env.errors.UnknownNameError` with a
did-you-mean hint.

Example:
    >>> reg: Registry[int] = Registry("number")
    >>> reg.add("one", 1)
    >>> reg.get("one")
    1
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable, Iterator
from importlib import metadata
from typing import Generic, TypeVar, overload

from tir_env.errors import UnknownNameError, did_you_mean

T = TypeVar("T")


def load_object(spec: str) -> object:
    """Import ``"package.module:attribute"`` and return the attribute."""
    module_name, _, attr = spec.partition(":")
    if not attr:
        raise ValueError(f"expected 'module:attribute', got {spec!r}")
    obj: object = importlib.import_module(module_name)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


class Registry(Generic[T]):
    """A name -> component map with lazy entries and entry-point plug-ins.

    Args:
        kind: What the registry holds, used in error messages ("tool", "metric", ...).
        entry_point_group: Optional ``importlib.metadata`` group scanned on first lookup,
            so installed packages can add components without being imported by hand.
    """

    def __init__(self, kind: str, entry_point_group: str | None = None) -> None:
        self.kind = kind
        self.entry_point_group = entry_point_group
        self._items: dict[str, T] = {}
        self._lazy: dict[str, str] = {}
        self._plugins_loaded = entry_point_group is None
        self._lock = threading.RLock()

    @overload
    def register(self, name: str) -> Callable[[T], T]: ...
    @overload
    def register(self, name: str, obj: T) -> T: ...
    def register(self, name: str, obj: T | None = None) -> T | Callable[[T], T]:
        """Register ``obj`` under ``name``; without ``obj``, return a decorator."""
        if obj is not None:
            self.add(name, obj)
            return obj

        def decorator(target: T) -> T:
            self.add(name, target)
            return target

        return decorator

    def add(self, name: str, obj: T, *, overwrite: bool = False) -> None:
        """Add a component; re-adding a name needs ``overwrite=True``."""
        with self._lock:
            if not overwrite and (name in self._items or name in self._lazy):
                raise ValueError(f"{self.kind} {name!r} is already registered")
            self._lazy.pop(name, None)
            self._items[name] = obj

    def add_lazy(self, name: str, spec: str) -> None:
        """Register ``"module:attr"``, imported on first :meth:`get`."""
        with self._lock:
            if name not in self._items:
                self._lazy[name] = spec

    def remove(self, name: str) -> None:
        """Forget a component (tests and plug-in reloading)."""
        with self._lock:
            self._items.pop(name, None)
            self._lazy.pop(name, None)

    def get(self, name: str) -> T:
        """Return the component called ``name``.

        Raises:
            UnknownNameError: ``name`` is not registered (with a did-you-mean hint).
        """
        self._load_plugins()
        with self._lock:
            if name in self._items:
                return self._items[name]
            if name in self._lazy:
                obj = load_object(self._lazy.pop(name))
                self._items[name] = obj  # type: ignore[assignment]
                return self._items[name]
        raise UnknownNameError(
            f"unknown {self.kind} {name!r}.{did_you_mean(name, self.names())} "
            f"Registered: {', '.join(self.names()) or '(none)'}."
        )

    def names(self) -> list[str]:
        """All registered names, in registration order."""
        self._load_plugins()
        with self._lock:
            return list(self._items) + [n for n in self._lazy if n not in self._items]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name in self.names()

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self.names())

    def _load_plugins(self) -> None:
        if self._plugins_loaded:
            return
        self._plugins_loaded = True
        assert self.entry_point_group is not None  # invariant: set when not loaded
        for ep in metadata.entry_points(group=self.entry_point_group):
            self.add_lazy(ep.name, ep.value)
