"""One generic registry for tools, degradations, metrics, rewards and agents.

Every kind of component is registered the same way:

* **Declared next to the component.** A component carries its own metadata (``info`` for
  tools, degradations and metrics, class variables for rewards and agents) and is registered
  with its registry's decorator (``@register_tool``, ``@register_agent``, ...), which reads
  the name from that metadata (:func:`declared_name`).
* **Built-ins found without hand-kept lists.** A registry names the packages its built-ins
  live in (``builtins``); on the first lookup it imports every module under them
  (:func:`import_tree`), so a component in a new module is found with no other edit.
* **Third-party components through entry points.** Installed distributions declare them in
  an entry-point group (``tir.tools``, ``tir.degradations``, ``tir.metrics``, ``tir.rewards``,
  ``tir.agents``), loaded once, after the built-ins, on the first lookup. A plug-in that fails
  to load gives a :class:`~tir_env.errors.PluginWarning` naming its distribution (and a
  :class:`~tir_env.errors.PluginLoadError` when it is asked for); it never hides the built-ins
  or the other plug-ins, and it cannot replace a built-in.
* **Did-you-mean errors.** Unknown names raise :class:`~tir_env.errors.UnknownNameError` with
  a hint.

``docs/extending.md`` shows each kind in one file.

Example:
    >>> reg: Registry[int] = Registry("number")
    >>> reg.add("one", 1)
    >>> reg.get("one")
    1
"""

from __future__ import annotations

import importlib
import logging
import pkgutil
import threading
import warnings
from collections.abc import Callable, Iterator, Sequence
from importlib import metadata
from types import ModuleType
from typing import Generic, TypeVar

from tir_env.errors import PluginLoadError, PluginWarning, UnknownNameError, did_you_mean

logger = logging.getLogger(__name__)

T = TypeVar("T")
C = TypeVar("C")


def load_object(spec: str) -> object:
    """Import ``"package.module:attribute"`` and return the attribute."""
    module_name, _, attr = spec.partition(":")
    if not attr:
        raise ValueError(f"expected 'module:attribute', got {spec!r}")
    obj: object = importlib.import_module(module_name)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


def declared_name(component: object) -> str:
    """The name a component declares: ``component.info.name``, else ``component.name``.

    Raises:
        TypeError: the component declares no string name.
    """
    info = getattr(component, "info", None)
    name = getattr(info, "name", None) if info is not None else getattr(component, "name", None)
    if not isinstance(name, str) or not name:
        raise TypeError(
            f"{component!r} declares no name: give it an `info` with a `name` "
            f"(tools, degradations, metrics) or a `name` class variable (rewards, agents)"
        )
    return name


def import_tree(root: str) -> list[str]:
    """Import module ``root`` and, if it is a package, every module below it (sorted walk).

    A module that needs an optional third-party dependency that is missing (or too old) is
    skipped (logged at debug level), as the component it holds cannot run here anyway; any
    other error propagates, because a broken built-in is a bug.

    Returns:
        The names of the modules imported (or already imported), in walk order.
    """
    module = importlib.import_module(root)
    names = [root]
    for found in pkgutil.walk_packages(getattr(module, "__path__", []), prefix=f"{root}."):
        if _import_optional(found.name, root):
            names.append(found.name)
    return names


def _import_optional(name: str, root: str) -> bool:
    """Import ``name``; False when a dependency outside ``root``'s project is missing."""
    try:
        importlib.import_module(name)
    except ImportError as err:  # ModuleNotFoundError, or a name missing from an old version
        project = root.partition(".")[0]
        if err.name is None or err.name.partition(".")[0] == project:
            raise
        logger.debug("skipped %s: optional dependency %s is missing", name, err.name)
        return False
    return True


class Registry(Generic[T]):
    """A name -> component map with built-in discovery and entry-point plug-ins.

    Args:
        kind: What the registry holds, used in error messages ("tool", "metric", ...).
        entry_point_group: ``importlib.metadata`` group whose entry points are loaded once,
            on the first lookup, so installed packages add components without being imported
            by hand. An entry point names a component (``"pkg.module:Component"``) or a
            module whose import registers components with the decorator.
        builtins: Modules or packages (walked recursively) imported on the first lookup,
            before the plug-ins. Components register in the order their modules are first
            imported (a package's ``__init__`` may import its modules in a fixed order, as
            the classical tools' does; the walk imports the rest in sorted order), and
            :meth:`names` lists them before anything registered from elsewhere.
    """

    def __init__(
        self,
        kind: str,
        entry_point_group: str | None = None,
        builtins: Sequence[str] = (),
    ) -> None:
        self.kind = kind
        self.entry_point_group = entry_point_group
        self.builtins = tuple(builtins)
        self._items: dict[str, T] = {}
        self._lazy: dict[str, str] = {}
        self._origin: dict[str, str] = {}
        self._builtin: dict[str, int] = {}  # name -> index of its root in `builtins`
        self._broken: dict[str, str] = {}
        self._sources: list[Callable[[], object]] = []
        self._loaded = self._loading = False
        self._lock = threading.RLock()
        self._local = threading.local()

    def register(self, component: C) -> C:
        """Decorator: register ``component`` under its :func:`declared_name`; return it.

        Registering the same object again is a no-op.

        Raises:
            TypeError: the component declares no name.
            ValueError: another component already has that name.
        """
        self.add(declared_name(component), component)  # type: ignore[arg-type]
        return component

    def add(self, name: str, obj: T, *, overwrite: bool = False) -> None:
        """Add a component under ``name``; replacing another one needs ``overwrite=True``."""
        with self._lock:
            if self._items.get(name) is obj:
                return
            if not overwrite and (name in self._items or name in self._lazy):
                raise ValueError(f"{self.kind} {name!r} is already registered")
            self._lazy.pop(name, None)
            root = self._builtin_root(obj)
            if name not in self._items and root is not None:
                self._builtin[name] = root
            self._items[name] = obj

    def add_lazy(self, name: str, spec: str) -> None:
        """Register ``"module:attr"``, imported on first :meth:`get` (heavy components)."""
        with self._lock:
            if name not in self._items:
                self._lazy[name] = spec

    def add_source(self, source: Callable[[], object]) -> None:
        """Call ``source`` before every lookup (components that come and go with files).

        The pretrained tools use it to follow ``$TIR_TOOLS_TOML``; a source must be cheap
        when nothing changed. Lookups made from inside a source do not re-run the sources,
        nor do lookups of a built-in by name (a source never changes a built-in: it adds
        components under new names); listings (:meth:`names`) always do.
        """
        with self._lock:
            if source not in self._sources:
                self._sources.append(source)

    def remove(self, name: str) -> None:
        """Forget a component (tests and plug-in reloading)."""
        with self._lock:
            self._items.pop(name, None)
            self._lazy.pop(name, None)
            self._origin.pop(name, None)
            self._builtin.pop(name, None)

    def reload_plugins(self) -> None:
        """Forget the plug-ins and load the entry points again (after installing a package).

        Components registered before are kept (a plug-in cannot replace them).
        """
        if not self._loaded:  # the first lookup loads them
            self._ensure_loaded()
            return
        with self._lock:
            for name in list(self._origin):
                self.remove(name)
            self._broken.clear()
            self._load_plugins()

    def origin(self, name: str) -> str | None:
        """The distribution a plug-in came from, or ``None`` for everything else."""
        self._ensure_loaded()
        return self._origin.get(name)

    def is_builtin(self, name: str) -> bool:
        """Whether ``name`` was first registered with a component defined under :attr:`builtins`.

        Plug-ins and components registered by hand (an experiment's, a test's) are not, so
        presets made of built-ins (the default toolbox) do not change when they appear.
        """
        self._ensure_loaded()
        return name in self._builtin

    def _builtin_root(self, obj: object) -> int | None:
        """Index in :attr:`builtins` of the root that defines ``obj`` (``None``: elsewhere)."""
        module = getattr(obj, "__module__", None) or ""
        for index, root in enumerate(self.builtins):
            if module == root or module.startswith(f"{root}."):
                return index
        return None

    def get(self, name: str) -> T:
        """Return the component called ``name``.

        Raises:
            UnknownNameError: ``name`` is not registered (with a did-you-mean hint).
            PluginLoadError: ``name`` is a plug-in that failed to load.
        """
        found = self._items.get(name) if self._loaded and name in self._builtin else None
        if found is not None:
            # A built-in never comes or goes with files, so its lookup skips the sources: an
            # env step looks tools up dozens of times, and the sources' checks (environment
            # variables, a stat) were 5-10% of a cheap tool's vector-env step
            return found
        self._ensure_loaded()
        with self._lock:
            if name in self._items:
                return self._items[name]
            if name in self._lazy:
                obj = load_object(self._lazy.pop(name))
                self._items[name] = obj  # type: ignore[assignment]
                return self._items[name]
            if name in self._broken:
                raise PluginLoadError(self._broken[name])
        raise UnknownNameError(
            f"unknown {self.kind} {name!r}.{did_you_mean(name, self.names())} "
            f"Registered: {', '.join(self.names()) or '(none)'}."
        )

    def names(self) -> list[str]:
        """All registered names: the built-ins, then the rest in registration order.

        Built-ins are listed root by root (in the order of :attr:`builtins`), each root's in
        registration order, whatever was imported first (a module imported by hand before the
        first lookup), so their order (the action-space indices of the tools) is always the
        same.
        """
        self._ensure_loaded()
        with self._lock:
            builtin = sorted(
                (n for n in self._items if n in self._builtin), key=self._builtin.__getitem__
            )
            rest = [n for n in self._items if n not in self._builtin]
            lazy = [n for n in self._lazy if n not in self._items]
            return builtin + rest + lazy

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name in self.names()

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self.names())

    def _ensure_loaded(self) -> None:
        """Import the built-ins and load the plug-ins once; run the sources every time."""
        if not self._loaded:
            with self._lock:  # other threads wait here until loading is complete
                if not self._loading:  # a lookup made while loading sees what is there
                    self._loading = True
                    try:
                        for root in self.builtins:
                            import_tree(root)
                        self._load_plugins()
                    except BaseException:
                        self._loading = False  # a broken built-in fails every lookup, loudly
                        raise
                    self._loaded = True
        self._run_sources()

    def _run_sources(self) -> None:
        if not self._sources or getattr(self._local, "in_source", False):
            return
        self._local.in_source = True
        try:
            for source in list(self._sources):
                source()
        finally:
            self._local.in_source = False

    def _load_plugins(self) -> None:
        if self.entry_point_group is None:
            return
        for ep in metadata.entry_points(group=self.entry_point_group):
            self._load_plugin(ep)

    def _load_plugin(self, ep: metadata.EntryPoint) -> None:
        """Register one entry point's component(s); warn and remember it if that fails."""
        dist = _distribution(ep)
        before = set(self._items)
        try:
            obj = ep.load()
            if not isinstance(obj, ModuleType):  # a module registers its components itself
                self._add_plugin_component(ep, obj, dist)
        except Exception as err:  # noqa: BLE001 - a broken plug-in must not break the rest
            message = (
                f"{self.kind} plug-in {ep.name!r} from distribution {dist} failed to load "
                f"(entry point {self.entry_point_group}: {ep.name} = {ep.value}): "
                f"{type(err).__name__}: {err}. Fix or uninstall {dist}."
            )
            self._broken[ep.name] = message
            warnings.warn(message, PluginWarning, stacklevel=2)
            return
        for name in self._items:
            if name not in before:
                self._origin[name] = dist

    def _add_plugin_component(self, ep: metadata.EntryPoint, obj: object, dist: str) -> None:
        try:
            name = declared_name(obj)
        except TypeError:
            name = ep.name  # a plain factory: the entry point's name is its name
        current = self._items.get(name)
        if current is obj:
            return  # its module registered it with the decorator already
        if current is not None or name in self._lazy:
            raise ValueError(
                f"{self.kind} {name!r} is already registered "
                f"(by {self._origin.get(name, 'tir')}); a plug-in cannot replace it"
            )
        self._items[name] = obj  # type: ignore[assignment]


def _distribution(ep: metadata.EntryPoint) -> str:
    """``'name version'`` of the distribution that declares ``ep`` (best effort)."""
    dist = getattr(ep, "dist", None)
    if dist is None:
        return "(unknown distribution)"
    return f"{dist.metadata['Name']} {dist.version}"
