"""One command line for every frozen config dataclass (training recipes, data collection).

``config_from_args(SFTConfig, argv, prog="tir train sft")`` gives every field a
``--field-name`` flag whose help is the field's text from the class's Google-style
``Attributes:`` section, with its default. One syntax everywhere:

* booleans: ``--flag`` / ``--no-flag``;
* tuples: values separated by spaces, commas or both (``--net-arch 64 64`` =
  ``--net-arch 64,64``), each converted to the type of the default's elements;
* optional fields (``int | None``): ``none`` means ``None``; the value's type comes from the
  annotation when the default is ``None``;
* ``Literal`` fields: the literal values are the flag's choices.

A field annotated ``Annotated[T, Arg(...)]`` (:class:`Arg`) is a positional, takes a short
flag (``-o``), joins a mutually exclusive group, repeats (``--agent-arg a --agent-arg b``),
takes one comma-separated word, or hands every word left to a recipe. A subcommand's parser
is built with :func:`add_config_arguments` and read back with :func:`config_from_namespace`
(the ``tir`` command line: ``benchmarks/cli.py``).

:func:`config_from_mapping` fills the same dataclasses from ``key=value`` options (agent
options: ``--agent-arg ppo.deterministic=false``, ``gym.make``/Python keyword arguments):
strings are parsed by the field's annotation with the same syntax, typed values are checked
against it, and an unknown key or a bad value raises a named error.

Why not tyro: its tuples take space-separated values only and its ``None`` is spelled
``None``, so ``--net-arch 64,64`` and ``--limit none`` (tests/test_config_cli.py, the recipes'
documented commands) would break, and agent options (``key=value`` strings, not argv) would
still need this converter.
"""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import (
    Annotated,
    Any,
    Literal,
    TypeVar,
    Union,
    get_args,
    get_origin,
    get_type_hints,
)

from tir_env.errors import ConfigValueError, UnknownConfigFieldError, did_you_mean
from tir_env.help_text import HelpFormatter

T = TypeVar("T")
_NONE_WORDS = ("none", "None")
_TRUE_WORDS = ("1", "true", "yes", "on")
_FALSE_WORDS = ("0", "false", "no", "off")
#: The parser default (and namespace attribute) naming the config class of a parser's values.
CONFIG_KEY = "__config__"


def field_docs(cls: type) -> dict[str, str]:
    """Each field's text from the Google-style ``Attributes:`` sections of ``cls`` and its bases.

    A subclass's text wins over a base's (an inherited field keeps the base's doc).
    """
    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if "__doc__" in vars(klass) and dataclasses.is_dataclass(klass):
            docs.update(_own_field_docs(klass))
    return docs


def _own_field_docs(cls: type) -> dict[str, str]:
    docs: dict[str, str] = {}
    name = ""
    section = (cls.__doc__ or "").split("Attributes:", 1)[-1]
    for line in section.splitlines():
        text = line.strip()
        head, _, rest = text.partition(": ")
        if (
            head.isidentifier()
            and rest
            and line.startswith(" " * 8)
            and not line.startswith(" " * 12)
        ):
            name, docs[head] = head, rest
        elif name and text:
            docs[name] += " " + text
    return docs


@dataclass(frozen=True)
class Arg:
    """How one field appears on the command line, beyond a plain ``--field-name`` flag.

    Attach it with ``Annotated``: ``output: Annotated[str, Arg(flags=("-o",))] = "out.png"``.

    Attributes:
        positional: A positional argument named after the field (``nargs="?"`` when the field
            has a default, ``"*"`` for a tuple, ``"+"`` for a tuple without a default).
        remainder: A positional tuple that takes every word left (a recipe's own options).
        flags: More option strings for the same field (``("-o",)``).
        group: Name of a mutually exclusive group; fields sharing it exclude each other.
        append: A tuple field given by repeating its flag, one item a time (``--agent-arg``).
        one_word: A tuple field given as one comma-separated word, so it cannot swallow a
            following positional (``--agents random,fixed``).
        metavar: The value's name in ``--help``.
        parse: Converter of one word (raises ``argparse.ArgumentTypeError``), instead of the
            annotation's type.
        split: Whether each word of a tuple field is split at commas (``False`` for file
            names, where a comma is part of the name).
    """

    positional: bool = False
    remainder: bool = False
    flags: tuple[str, ...] = ()
    group: str = ""
    append: bool = False
    one_word: bool = False
    metavar: str | None = None
    parse: Callable[[str], Any] | None = None
    split: bool = True


def config_parser(
    cls: type, prog: str, skip: Iterable[str] = (), description: str | None = None
) -> argparse.ArgumentParser:
    """An argument parser with one flag per field of dataclass ``cls`` (``skip``: none)."""
    parser = argparse.ArgumentParser(
        prog=prog,
        description=description or summary(cls),
        formatter_class=HelpFormatter,
    )
    add_config_arguments(parser, cls, skip)
    return parser


def summary(cls: type) -> str:
    """The first line of ``cls``'s docstring (a parser's description)."""
    return (cls.__doc__ or "").strip().split("\n")[0]


def add_config_arguments(
    parser: argparse.ArgumentParser, cls: type, skip: Iterable[str] = ()
) -> None:
    """Add one argument per field of dataclass ``cls`` to ``parser`` (a subcommand's, say).

    Each field's help is its ``Attributes:`` text; its :class:`Arg` annotation (if any) makes
    it positional, repeated, short, ... ``parser``'s default :data:`CONFIG_KEY` becomes
    ``cls``, so the caller (and a test walking the parsers) can find it.
    """
    docs, skipped = field_docs(cls), set(skip)
    hints = get_type_hints(cls, include_extras=True)
    groups: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        if f.name in skipped or not f.init:
            continue
        hint, spec = _split_annotated(hints.get(f.name, Any))
        target: Any = parser
        if spec.group:
            if spec.group not in groups:
                groups[spec.group] = parser.add_mutually_exclusive_group()
            target = groups[spec.group]
        # argparse %-formats help: a literal "%" in a docstring must be doubled.
        text = docs.get(f.name, " ").replace("%", "%%")
        _add_field(target, f, hint, spec, text)
    parser.set_defaults(**{CONFIG_KEY: cls})


def _split_annotated(hint: Any) -> tuple[Any, Arg]:
    """``Annotated[T, Arg(...)]`` -> ``(T, the Arg)``; any other hint -> ``(hint, Arg())``."""
    if get_origin(hint) is Annotated:
        spec = next((m for m in hint.__metadata__ if isinstance(m, Arg)), Arg())
        return hint.__origin__, spec
    return hint, Arg()


def _add_field(target: Any, f: dataclasses.Field[Any], hint: Any, spec: Arg, text: str) -> None:
    """Add the argument of field ``f`` to ``target`` (a parser or a mutually exclusive group)."""
    default, flag = _default(f), "--" + f.name.replace("_", "-")
    names = [f.name] if spec.positional or spec.remainder else [*spec.flags, flag]
    kwargs: dict[str, Any] = {"help": text, "metavar": spec.metavar}
    if spec.remainder:
        action = target.add_argument(*names, nargs=argparse.REMAINDER, **kwargs)
        action.required = False  # no words left is an empty tuple, not a missing argument
        return
    required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    if spec.positional and required and get_origin(hint) is tuple:  # one or more words
        target.add_argument(*names, nargs="+", **kwargs)
        return
    if not spec.positional:
        kwargs["default"] = default
    elif f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING:
        kwargs.update(default=default, nargs="?")
    if isinstance(default, bool):
        kwargs.pop("metavar")
        target.add_argument(*names, action=argparse.BooleanOptionalAction, **kwargs)
    elif isinstance(default, tuple) and spec.append:
        target.add_argument(*names, action="append", **{**kwargs, "default": list(default)})
    elif isinstance(default, tuple) and spec.one_word:
        kwargs["help"] += " (comma-separated)"
        target.add_argument(*names, **{**kwargs, "default": ",".join(map(str, default))})
    elif isinstance(default, tuple):
        kwargs["help"] += " (several values: spaces or commas)"
        target.add_argument(*names, **{**kwargs, "nargs": "*"})
    else:
        choices = _choices(hint)
        kind = spec.parse or (type(choices[0]) if choices else _scalar(hint, default))
        target.add_argument(*names, type=kind, choices=choices, **kwargs)


def _choices(hint: Any) -> tuple[Any, ...] | None:
    """The values of a ``Literal`` hint (``Literal[...] | None`` too), else ``None``."""
    members = [a for a in get_args(hint) if a is not type(None)]
    if get_origin(hint) in (Union, types.UnionType) and len(members) == 1:
        hint = members[0]
    return get_args(hint) if get_origin(hint) is Literal else None


def config_from_args(
    cls: Callable[..., T],
    argv: Sequence[str] | None,
    prog: str,
    skip: Iterable[str] = (),
    description: str | None = None,
) -> T:
    """Build ``cls`` (a dataclass) from ``argv`` (``None``: ``sys.argv[1:]``).

    Raises:
        SystemExit: argparse's exit on ``--help`` or a malformed value (with its message).
    """
    parser = config_parser(cls, prog, skip, description)  # type: ignore[arg-type]
    return config_from_namespace(cls, parser.parse_args(argv), parser)


def config_from_namespace(
    cls: Callable[..., T],
    namespace: argparse.Namespace,
    parser: argparse.ArgumentParser | None = None,
    **extra: Any,
) -> T:
    """Build ``cls`` from the values :func:`add_config_arguments`'s arguments parsed.

    Tuples arrive as lists of words (or one comma-separated word) and are converted by the
    field's annotation; ``extra`` sets fields that are no flags (``argv=...``).

    Raises:
        SystemExit: a tuple item of the wrong type, or a value the config's own checks
            (``__post_init__``) refuse (through ``parser.error``, if given).
        ConfigValueError: the same, when no ``parser`` is given.
    """
    values = vars(namespace)
    hints = get_type_hints(cls, include_extras=True)
    kept = dict(extra)
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        if f.name not in values or f.name in kept or not f.init:
            continue
        value = values[f.name]
        hint, spec = _split_annotated(hints.get(f.name, Any))
        is_tuple = isinstance(_default(f), tuple) or get_origin(hint) is tuple
        if is_tuple and not isinstance(value, tuple):
            # a repeated flag gives one item per flag: a comma is part of its value
            value = _tuple(value, hint, parser, f.name, split=spec.split and not spec.append)
        kept[f.name] = value
    try:
        return cls(**kept)
    except ValueError as err:  # the config's own checks: a usage error, not a traceback
        if parser is None:
            raise ConfigValueError(str(err)) from None
        parser.error(str(err))
        raise  # unreachable: parser.error exits


def _default(f: dataclasses.Field[Any]) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return None


def _scalar(hint: Any, default: Any) -> Callable[[str], Any]:
    """The converter of one value: the default's type, else the annotation's."""
    members = [a for a in get_args(hint) if a is not type(None)]
    optional = type(None) in get_args(hint)
    if default is not None:
        kind: Callable[[str], Any] = type(default)
    elif optional and len(members) == 1 and members[0] in (int, float, str, Path):
        kind = members[0]
    else:
        kind = hint if hint in (int, float, str, Path) else str
    if not optional:
        return kind

    def maybe(text: str) -> Any:
        return None if text in _NONE_WORDS else kind(text)

    return maybe


def _tuple(
    words: Sequence[str] | str | None,
    hint: Any,
    parser: argparse.ArgumentParser | None,
    name: str,
    split: bool = True,
) -> tuple[Any, ...]:
    """Words (each comma-separated, with ``split``) as the tuple ``hint`` describes."""
    if words is None:
        words = []
    items = [
        w
        for word in ([words] if isinstance(words, str) else words)
        for w in (str(word).split(",") if split else [str(word)])
        if w
    ]
    if get_origin(hint) is not tuple:
        hint = tuple[str, ...]
    try:
        return tuple(_convert(hint, items))
    except (TypeError, ValueError) as err:
        message = f"--{name.replace('_', '-')}: {items} do not fit {_type_name(hint)} ({err})"
        if parser is None:
            raise ConfigValueError(message) from None
        parser.error(message)
        raise  # unreachable: parser.error exits


def config_from_mapping(cls: Callable[..., T], values: Mapping[str, Any], owner: str) -> T:
    """Build dataclass ``cls`` from ``key -> value`` options, each parsed by its field's type.

    A string value is read by the annotation (``"false"`` -> ``False``, ``"9"`` -> ``9``,
    ``"none"`` -> ``None`` for optional fields, ``"a,b"`` -> a tuple); a typed value is
    checked against it (an ``int`` is accepted for a ``float``).

    Args:
        cls: A dataclass.
        values: The options given; fields not named keep their defaults.
        owner: Who the options belong to, for messages (``"agent 'ppo'"``).

    Raises:
        UnknownConfigFieldError: a key names no field (with a did-you-mean).
        ConfigValueError: a value cannot be read as its field's type.
    """
    names = [f.name for f in dataclasses.fields(cls) if f.init]  # type: ignore[arg-type]
    for key in values:
        if key not in names:
            raise UnknownConfigFieldError(
                f"{owner}: unknown option {key!r}; options: {', '.join(names)}."
                + did_you_mean(key, names)
            )
    hints = get_type_hints(cls)
    parsed = {
        k: parse_value(hints.get(k, Any), v, f"{owner}: option {k!r}") for k, v in values.items()
    }
    return cls(**parsed)


def parse_value(annotation: Any, value: Any, where: str) -> Any:
    """``value`` as type ``annotation`` (strings parsed, typed values checked).

    Raises:
        ConfigValueError: ``value`` does not fit ``annotation`` (``where`` starts the message).
    """
    try:
        return _convert(annotation, value)
    except (TypeError, ValueError) as err:
        raise ConfigValueError(
            f"{where}: {value!r} is not a {_type_name(annotation)} ({err})"
        ) from None


def _convert(annotation: Any, value: Any) -> Any:
    origin, args = get_origin(annotation), get_args(annotation)
    if annotation is Any or isinstance(annotation, TypeVar):
        return value
    if origin in (Union, types.UnionType):
        return _convert_union(args, value)
    if origin is Literal:
        for choice in args:
            if value == choice or (isinstance(value, str) and str(choice) == value):
                return choice
        raise ValueError(f"choose one of {', '.join(map(str, args))}")
    if origin is tuple:
        return _convert_tuple(args, value)
    if annotation in (bool, int, float, str):
        return _convert_scalar(annotation, value)
    if annotation is Path:
        if isinstance(value, str | Path):
            return Path(value)
        raise TypeError("expected a path")
    check = origin or annotation
    if isinstance(check, type) and not _is_protocol(check) and not isinstance(value, check):
        raise TypeError(f"expected {check.__name__}, got {type(value).__name__}")
    return value


def _convert_union(args: tuple[Any, ...], value: Any) -> Any:
    # A literal that names "none" (a prompt detail) keeps the word; otherwise it means None.
    literal = any(value in get_args(a) for a in args if get_origin(a) is Literal)
    if (
        type(None) in args
        and not literal
        and (value is None or value in _NONE_WORDS or value == "")
    ):
        return None
    members = [a for a in args if a is not type(None)]
    # A string is tried as every other member first: "3" for `int | str` means 3.
    members.sort(key=lambda a: a is str)
    errors = []
    for member in members:
        try:
            return _convert(member, value)
        except (TypeError, ValueError) as err:
            errors.append(str(err))
    raise ValueError("; ".join(errors))


def _convert_tuple(args: tuple[Any, ...], value: Any) -> tuple[Any, ...]:
    items: Sequence[Any]
    if isinstance(value, str):
        items = [w.strip() for w in value.split(",") if w.strip()]
    elif isinstance(value, list | tuple):
        items = value
    else:
        raise TypeError("expected a tuple or comma-separated values")
    if len(args) == 2 and args[1] is Ellipsis:
        return tuple(_convert(args[0], v) for v in items)
    if args and len(args) != len(items):
        raise ValueError(f"expected {len(args)} values")
    return tuple(_convert(a, v) for a, v in zip(args or [Any] * len(items), items, strict=True))


def _convert_scalar(kind: type, value: Any) -> Any:
    if isinstance(value, str) and kind is not str:
        return _parse_word(kind, value.strip())
    if kind is float and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if kind is int and isinstance(value, bool):
        raise TypeError("expected int, got bool")
    if not isinstance(value, kind):
        raise TypeError(f"expected {kind.__name__}, got {type(value).__name__}")
    return value


def _parse_word(kind: type, text: str) -> Any:
    if kind is bool:
        if text.lower() in _TRUE_WORDS:
            return True
        if text.lower() in _FALSE_WORDS:
            return False
        raise ValueError(f"write one of {', '.join(_TRUE_WORDS + _FALSE_WORDS)}")
    return kind(text)


def _is_protocol(cls: type) -> bool:
    return bool(getattr(cls, "_is_protocol", False))


def _type_name(annotation: Any) -> str:
    text = typing._type_repr(annotation)
    return text.replace("typing.", "").replace("pathlib.", "")
