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
* **Built-ins are who registers, not what.** A name is a built-in's only when the import of a
  built-in module registers it; a component registered by any other code (a user's
  ``MetricSpec`` of a built-in metric class included) is not (:meth:`Registry.is_builtin`).
* **Built-in names are never taken.** A registration made outside the built-in modules
  imports the built-ins first, so a clash with one is refused at once
  (:class:`~tir_env.errors.NameTakenError`), whenever the component is defined. Registering
  the same definition again (same module and qualified name: a re-run notebook cell) replaces
  it with a :class:`~tir_env.errors.ComponentReplacedWarning`.
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

from tir_env.errors import (
    ComponentReplacedWarning,
    NameTakenError,
    PluginLoadError,
    PluginWarning,
    UnknownNameError,
    did_you_mean,
)
from tir_env.registry_identity import qualified, registering_module, same_definition

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
        self._on_replace: list[Callable[[str], object]] = []
        self._loaded = self._loading = False
        self._builtins_imported = False  # imported ahead of the plug-ins (:meth:`_load_before`)
        self._lock = threading.RLock()
        self._local = threading.local()

    def register(self, component: C) -> C:
        """Decorator: register ``component`` under its :func:`declared_name`; return it.

        Registering the same object again is a no-op. Registering another object made by the
        same definition (same ``__module__`` and ``__qualname__``: a re-run notebook cell, a
        reloaded module) replaces it, with a :class:`~tir_env.errors.ComponentReplacedWarning`;
        a built-in is never replaced.

        Raises:
            TypeError: the component declares no name.
            NameTakenError: another component already has that name (a built-in's name is
                refused even before the built-ins were first looked up).
        """
        name = declared_name(component)
        root = self._registrar_root()
        with self._lock:
            self._load_before(root)
            current = self._items.get(name)
            if name not in self._builtin and same_definition(current, component):
                self._replace(name, component)  # type: ignore[arg-type]
                return component
        self._add(name, component, overwrite=False, root=root)  # type: ignore[arg-type]
        return component

    def on_replace(self, callback: Callable[[str], object]) -> None:
        """Call ``callback(name)`` after a component is replaced (to drop cached instances)."""
        with self._lock:
            if callback not in self._on_replace:
                self._on_replace.append(callback)

    def add(self, name: str, obj: T, *, overwrite: bool = False) -> None:
        """Add a component under ``name``; replacing another one needs ``overwrite=True``.

        Raises:
            NameTakenError: ``name`` is taken and ``overwrite`` is False.
        """
        self._add(name, obj, overwrite=overwrite, root=self._registrar_root())

    def _add(self, name: str, obj: T, *, overwrite: bool, root: int | None) -> None:
        """:meth:`add`, ``root`` being :meth:`_registrar_root` of the registration.

        A new name is a built-in's only when a built-in module's import registers it; an
        overwrite keeps the name's status (a benchmark swapping a built-in's implementation).
        """
        with self._lock:
            self._load_before(root)
            if self._items.get(name) is obj:
                return
            if not overwrite and (name in self._items or name in self._lazy):
                raise NameTakenError(self._taken_message(name, obj))
            self._lazy.pop(name, None)
            if name not in self._items and root is not None:
                self._builtin[name] = root
            self._items[name] = obj

    def _registrar_root(self) -> int | None:
        """Index in :attr:`builtins` of the built-in module whose import registers now.

        ``None`` for every other registration: user code, a plug-in, a source. Who registers
        decides, never the component's class: a user's ``MetricSpec`` of a built-in class
        counted as a built-in and skipped the NaN guard of its scores (``Metric.__call__``).
        """
        if getattr(self._local, "in_source", False):
            # A source adds components that come and go with files (a user's checkpoints),
            # even when it runs during a built-in module's import (a lookup made there).
            return None
        module = registering_module()
        return None if module is None else self._root_index(module)

    def _load_before(self, root: int | None) -> None:
        """Import the built-ins before a registration, unless a built-in (``root``) makes it.

        A component defined elsewhere (a user's, a plug-in's) registered before the first
        lookup would otherwise take a built-in's name, and the built-in's own registration
        would then fail, leaving the registry half loaded. A built-in registering itself (while
        the built-ins load, or a built-in module imported by hand) must not start the import
        of its own, half imported, package.
        """
        if self._loaded or self._loading or self._builtins_imported:
            return
        # Who registers decides, not what: a user's MetricSpec wraps a built-in class.
        if root is None:
            self._import_builtins()  # the plug-ins load at the first lookup, as before

    def _import_builtins(self) -> None:
        """Import the built-in modules once, not the plug-ins.

        A plug-in module imported by hand registers while half imported: loading its entry
        point then would fail.
        """
        with self._lock:
            if self._builtins_imported or self._loading:
                return
            self._loading = True
            try:
                self._import_builtin_modules()
            finally:
                self._loading = False

    def _import_builtin_modules(self) -> None:
        """Import every module under :attr:`builtins`, once (the caller holds the lock)."""
        if not self._builtins_imported:
            for root in self.builtins:
                import_tree(root)
            self._builtins_imported = True

    def _replace(self, name: str, obj: T) -> None:
        """Put ``obj`` (the same definition as the current one) under ``name``, with a warning."""
        warnings.warn(
            f"{self.kind} {name!r} registered again by the same definition "
            f"({qualified(obj)}, e.g. a re-run notebook cell): the new one replaces the old "
            f"one (an env keeps the reward it was made with: make a new env)",
            ComponentReplacedWarning,
            stacklevel=4,
        )
        self._items[name] = obj
        for callback in list(self._on_replace):
            callback(name)

    def _taken_message(self, name: str, obj: object) -> str:
        """Why ``obj`` cannot take ``name``: who holds it, and what to do."""
        if name in self._builtin:
            holder = f"TIR's built-in {qualified(self._items.get(name))}"
            fix = "a built-in cannot be replaced; give yours another name"
        elif name in self._origin:
            holder = f"{qualified(self._items.get(name))} (plug-in from {self._origin[name]})"
            fix = "give yours another name"
        else:
            holder = qualified(self._items.get(name, self._lazy.get(name)))
            fix = "give yours another name (or remove the old one from the registry first)"
        return (
            f"{self.kind} {name!r} is already registered by {holder}; "
            f"{qualified(obj)} cannot take its name: {fix}"
        )

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
        """Whether ``name`` was first registered by the import of a module under :attr:`builtins`.

        Plug-ins, sources' components and components registered by hand (an experiment's, a
        test's) are not, whatever class they use (a user's ``MetricSpec`` of a built-in
        class), so presets made of built-ins (the default toolbox) do not change when they
        appear, and a user's metric keeps the NaN guard of its scores.
        """
        self._ensure_loaded()
        return name in self._builtin

    def _root_index(self, module: str) -> int | None:
        """Index in :attr:`builtins` of the root ``module`` lies under (``None``: none)."""
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
        self._load_once()
        self._run_sources()

    def _load_once(self) -> None:
        """Import the built-ins, then load the plug-ins, on the first call."""
        if self._loaded:
            return
        with self._lock:  # other threads wait here until loading is complete
            if self._loaded or self._loading:  # a lookup made while loading sees what is there
                return
            self._loading = True
            try:
                self._import_builtin_modules()
                self._load_plugins()
            except BaseException:
                self._loading = False  # a broken built-in fails every lookup, loudly
                raise
            self._loaded = True

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
