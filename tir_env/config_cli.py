"""One command line for every frozen config dataclass (training recipes, data collection).

``config_from_args(SFTConfig, argv, prog="tir train sft")`` gives every field a
``--field-name`` flag whose help is the field's text from the class's Google-style
``Attributes:`` section, with its default. One syntax everywhere:

* booleans: ``--flag`` / ``--no-flag``;
* tuples: values separated by spaces, commas or both (``--net-arch 64 64`` =
  ``--net-arch 64,64``), each converted to the type of the default's elements;
* optional fields (``int | None``): ``none`` means ``None``; the value's type comes from the
  annotation when the default is ``None``.

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
from pathlib import Path
from typing import Any, Literal, TypeVar, Union, get_args, get_origin, get_type_hints

from tir_env.errors import ConfigValueError, UnknownConfigFieldError, did_you_mean

T = TypeVar("T")
_NONE_WORDS = ("none", "None")
_TRUE_WORDS = ("1", "true", "yes", "on")
_FALSE_WORDS = ("0", "false", "no", "off")


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


def config_parser(
    cls: type, prog: str, skip: Iterable[str] = (), description: str | None = None
) -> argparse.ArgumentParser:
    """An argument parser with one flag per field of dataclass ``cls`` (``skip``: none)."""
    parser = argparse.ArgumentParser(
        prog=prog,
        description=description or (cls.__doc__ or "").strip().split("\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    docs, skipped = field_docs(cls), set(skip)
    for f in dataclasses.fields(cls):
        if f.name in skipped or not f.init:
            continue
        default = _default(f)
        # argparse %-formats help: a literal "%" in a docstring must be doubled.
        flag, text = "--" + f.name.replace("_", "-"), docs.get(f.name, " ").replace("%", "%%")
        if isinstance(default, bool):
            parser.add_argument(
                flag, action=argparse.BooleanOptionalAction, default=default, help=text
            )
        elif isinstance(default, tuple):
            text += " (several values: spaces or commas)"
            parser.add_argument(flag, nargs="*", default=default, help=text)
        else:
            parser.add_argument(flag, type=_scalar(f, default), default=default, help=text)
    return parser


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
    values = vars(parser.parse_args(argv))
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        if f.name not in values:
            continue
        default = _default(f)
        if isinstance(default, tuple) and not isinstance(values[f.name], tuple):
            values[f.name] = _tuple(values[f.name], default, parser, f.name)
    return cls(**values)


def _default(f: dataclasses.Field[Any]) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return None


def _scalar(f: dataclasses.Field[Any], default: Any) -> Callable[[str], Any]:
    """The converter of one value: the default's type, else the annotation's."""
    annotation = str(f.type)
    if default is not None:
        kind: Callable[[str], Any] = type(default)
    else:
        kind = int if "int" in annotation else float if "float" in annotation else str
    if "None" not in annotation:
        return kind

    def optional(text: str) -> Any:
        return None if text in _NONE_WORDS else kind(text)

    return optional


def _tuple(
    words: Sequence[str], default: tuple[Any, ...], parser: argparse.ArgumentParser, name: str
) -> tuple[Any, ...]:
    kind = type(default[0]) if default else str
    items = [w for word in words for w in str(word).split(",") if w]
    try:
        return tuple(kind(w) for w in items)
    except ValueError:
        parser.error(f"--{name.replace('_', '-')}: {items} are not all {kind.__name__} values")
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
    if type(None) in args and (value is None or value in _NONE_WORDS or value == ""):
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
