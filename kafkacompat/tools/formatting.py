"""How ``kafkacompat consume`` prints a record: a ``--format`` template or one JSON object per line.

A template is literal text with placeholders ``{topic}``, ``{partition}``,
``{offset}``, ``{timestamp}``, ``{key}``, ``{value}`` and ``{headers}``;
``{{``/``}}`` are literal braces and ``\\n``, ``\\t``, ``\\\\`` the usual escapes.
Keys, values and header values print as UTF-8 text and a null one as
``null``, as Kafka's console consumer prints them; headers as
``name:value`` pairs joined by commas.
"""

from __future__ import annotations

import json
from typing import Any, Callable, NamedTuple

PLACEHOLDERS = ("topic", "partition", "offset", "timestamp", "key", "value", "headers")
DEFAULT_FORMAT = "{value}"
_ESCAPES = {"n": "\n", "t": "\t", "\\": "\\"}


class ConsumedRecord(NamedTuple):
    topic: str
    partition: int
    offset: int
    timestamp: int
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes | None]]


def _text(data: bytes | None) -> str | None:
    return None if data is None else data.decode("utf-8", errors="backslashreplace")


def _field(record: ConsumedRecord, name: str) -> str:
    if name == "headers":
        return ",".join(f"{key}:{_text(value) if value is not None else 'null'}" for key, value in record.headers)
    value = getattr(record, name)
    if isinstance(value, bytes) or value is None:
        return "null" if value is None else _text(value)
    return str(value)


def parse_format(template: str) -> Callable[[ConsumedRecord], str]:
    """Compile ``template`` into a record -> line function; ValueError names what is wrong."""
    pieces: list[str | tuple[str]] = []
    literal: list[str] = []
    i = 0
    while i < len(template):
        char = template[i]
        if char == "\\" and i + 1 < len(template) and template[i + 1] in _ESCAPES:
            literal.append(_ESCAPES[template[i + 1]])
            i += 2
        elif template.startswith(("{{", "}}"), i):
            literal.append(char)
            i += 2
        elif char == "{":
            end = template.find("}", i)
            name = template[i + 1 : end] if end > 0 else None
            if name not in PLACEHOLDERS:
                shown = template[i:] if end < 0 else template[i : end + 1]
                raise ValueError(f"unknown placeholder {shown!r}; use {', '.join('{%s}' % p for p in PLACEHOLDERS)}")
            pieces.extend(("".join(literal), (name,)))
            literal = []
            i = end + 1
        elif char == "}":
            raise ValueError(f"single '}}' at position {i}; write '}}}}' for a literal brace")
        else:
            literal.append(char)
            i += 1
    pieces.append("".join(literal))
    parts = tuple(p for p in pieces if p != "")

    def render(record: ConsumedRecord) -> str:
        return "".join(p if isinstance(p, str) else _field(record, p[0]) for p in parts)

    return render


def json_line(record: ConsumedRecord) -> str:
    """One JSON object: the record's fields, texts as UTF-8 (null stays null), headers as [name, value] pairs."""
    obj: dict[str, Any] = {
        "topic": record.topic, "partition": record.partition, "offset": record.offset,
        "timestamp": record.timestamp, "key": _text(record.key), "value": _text(record.value),
        "headers": [[name, _text(value)] for name, value in record.headers],
    }
    return json.dumps(obj, ensure_ascii=False)
