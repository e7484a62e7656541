"""GraphQL's JSON answers made into the typed dataclasses of :mod:`tui_client.types`.

:func:`parse` builds a dataclass by its fields' annotations: nested types, tuples,
``X | None``, enums, dates and ISO datetimes, Python names for GraphQL's (``display_name``
for ``displayName``). The function for each type is built once, the first time it is parsed.
"""

from __future__ import annotations

import types
from collections.abc import Callable, Mapping
from dataclasses import MISSING, fields, is_dataclass
from datetime import date, datetime
from enum import Enum
from typing import Any, TypeVar, Union, get_args, get_origin, get_type_hints

from tui_client.types import Page

T = TypeVar("T")


def parse(cls: type[T], data: Mapping[str, Any]) -> T:
    """``cls`` from an answer's JSON object, by its fields' annotations: nested types, tuples,
    ``X | None``, enums and ISO datetimes. A field with a default may be absent or null."""
    parsed: T = _parser(cls)(data)
    return parsed


def parse_page(conn: Mapping[str, Any], cls: type[T]) -> Page[T]:
    info = conn["pageInfo"]
    edges = conn["edges"]
    return Page(
        items=[parse(cls, edge["node"]) for edge in edges],
        total_count=conn["totalCount"],
        has_next_page=info["hasNextPage"],
        end_cursor=info["endCursor"],
        cursors=tuple(edge["cursor"] for edge in edges) if all("cursor" in e for e in edges) else (),
    )


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(word.title() for word in rest)


def _as_is(value: Any) -> Any:
    return value


# A function from JSON to each type, built the first time the type is parsed.
_PARSERS: dict[object, Callable[[Any], Any]] = {}


def _parser(tp: object) -> Callable[[Any], Any]:
    parser = _PARSERS.get(tp)
    if parser is None:
        parser = _PARSERS[tp] = _build_parser(tp)
    return parser


def _build_parser(tp: object) -> Callable[[Any], Any]:
    origin, args = get_origin(tp), get_args(tp)
    if origin in (Union, types.UnionType):
        (inner,) = [a for a in args if a is not type(None)]
        optional = _parser(inner)
        return lambda value: None if value is None else optional(value)
    if origin is tuple:
        item = _parser(args[0])
        return lambda value: tuple(map(item, value))
    if tp is datetime:
        return datetime.fromisoformat
    if tp is date:
        return date.fromisoformat
    if isinstance(tp, type) and issubclass(tp, Enum):
        return tp
    if isinstance(tp, type) and is_dataclass(tp):
        return _object_parser(tp)
    return _as_is


def _object_parser(cls: type[Any]) -> Callable[[Mapping[str, Any]], Any]:
    hints = get_type_hints(cls)
    # (python name, JSON key, converter or None when the JSON value is the value)
    required: list[tuple[str, str, Callable[[Any], Any] | None]] = []
    optional: list[tuple[str, str, Callable[[Any], Any] | None]] = []
    for f in fields(cls):
        convert = _parser(hints[f.name])
        spec = (f.name, _camel(f.name), None if convert is _as_is else convert)
        has_default = f.default is not MISSING or f.default_factory is not MISSING
        (optional if has_default else required).append(spec)

    def parse_object(data: Mapping[str, Any]) -> Any:
        values = {}
        for name, key, convert in required:
            value = data[key]
            values[name] = value if convert is None else convert(value)
        for name, key, convert in optional:
            value = data.get(key)
            if value is not None:
                values[name] = value if convert is None else convert(value)
        return cls(**values)

    return parse_object
