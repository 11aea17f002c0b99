"""``consume --format`` templates and the JSON-lines output."""

from __future__ import annotations

import json

import pytest

from kafkacompat.tools.formatting import ConsumedRecord, json_line, parse_format

RECORD = ConsumedRecord("orders", 2, 41, 1_700_000_000_123, b"k-1", "v\u00e9".encode(),
                        [("trace", b"abc"), ("empty", None), ("n", b"")])
NULLS = ConsumedRecord("orders", 0, 0, 5, None, None, [])


def test_every_placeholder_is_replaced():
    render = parse_format("{topic}/{partition}@{offset} t={timestamp} {key}={value} [{headers}]")
    assert render(RECORD) == "orders/2@41 t=1700000000123 k-1=v\u00e9 [trace:abc,empty:null,n:]"


def test_null_key_and_value_print_as_null_and_no_headers_as_nothing():
    assert parse_format("{key}|{value}|{headers}|")(NULLS) == "null|null||"


def test_escapes_and_literal_braces():
    assert parse_format(r"{{{offset}}}\t{value}\n\\")(RECORD) == "{41}\tv\u00e9\n\\"


def test_a_value_that_is_not_utf8_is_shown_escaped():
    record = RECORD._replace(value=b"\xff\x00a")
    assert parse_format("{value}")(record) == "\\xff\x00a"


@pytest.mark.parametrize("template,complaint", [
    ("{nope}", "unknown placeholder '{nope}'"),
    ("{value", "unknown placeholder '{value'"),
    ("{}", "unknown placeholder '{}'"),
    ("value}", "single '}'"),
])
def test_bad_templates_are_refused_with_the_reason(template, complaint):
    with pytest.raises(ValueError, match=complaint.replace("{", r"\{").replace("}", r"\}")):
        parse_format(template)


def test_json_line_is_one_object_with_every_field():
    line = json_line(RECORD)
    assert "\n" not in line
    assert json.loads(line) == {
        "topic": "orders", "partition": 2, "offset": 41, "timestamp": 1_700_000_000_123, "key": "k-1",
        "value": "v\u00e9", "headers": [["trace", "abc"], ["empty", None], ["n", ""]],
    }
    assert json.loads(json_line(NULLS))["key"] is None
