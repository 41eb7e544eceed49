"""One command line for every frozen config dataclass (training recipes, data collection).

``config_from_args(SFTConfig, argv, prog="tir train sft")`` gives every field a
``--field-name`` flag whose help is the field's text from the class's Google-style
``Attributes:`` section, with its default. One syntax everywhere:

* booleans: ``--flag`` / ``--no-flag``;
* tuples: values separated by spaces, commas or both (``--net-arch 64 64`` =
  ``--net-arch 64,64``), each converted to the type of the default's elements;
* optional fields (``int | None``): ``none`` means ``None``; the value's type comes from the
  annotation when the default is ``None``.
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

T = TypeVar("T")
_NONE_WORDS = ("none", "None")


def field_docs(cls: type) -> dict[str, str]:
    """Each field's text from a dataclass's Google-style ``Attributes:`` docstring section."""
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
