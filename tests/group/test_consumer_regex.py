"""RE2/J subscription patterns in Python's re: what is translated, what is refused, whole-name matching."""

from __future__ import annotations

import pytest

from kafkacompat.group.consumer.regex import matching_topics, translate
from kafkacompat.protocol.errors import ErrorCode, KafkaError

TOPICS = ["orders", "orders-eu", "orders-us", "payments", "x.y", "xzy", "a1b2"]


@pytest.mark.parametrize(("pattern", "matched"), [
    ("orders-.*", ["orders-eu", "orders-us"]),
    ("(^orders-.*)|(^pay.*)", ["orders-eu", "orders-us", "payments"]),  # librdkafka's combined form
    ("orders", ["orders"]),  # the whole name must match, as RE2/J's matches()
    (r"\Qx.y\E", ["x.y"]),
    ("[[:alpha:]][[:digit:]][[:alpha:]][[:digit:]]", ["a1b2"]),
    (r"(?i)ORDERS\z", ["orders"]),
    ("(?<region>orders)-(eu|us)", ["orders-eu", "orders-us"]),
])
def test_accepted_patterns_match_whole_topic_names(pattern, matched):
    assert matching_topics(translate(pattern), TOPICS) == matched


@pytest.mark.parametrize("pattern", [r"(a)\1", "(?P<n>a)(?P=n)", "a(?=b)", "a(?!b)", "(?<=a)b", "(?<!a)b",
                                     "(?>a)", "a++", r"\pL", r"\p{Greek}", "[[:nosuch:]]", "[[:^alpha:]]", "a("])
def test_what_re2_or_python_cannot_express_is_an_invalid_regular_expression(pattern):
    with pytest.raises(KafkaError) as refused:
        translate(pattern)
    assert refused.value.code == ErrorCode.INVALID_REGULAR_EXPRESSION


def test_an_escaped_backslash_does_not_start_a_construct():
    assert matching_topics(translate(r"a\\1"), ["a\\1", "a1"]) == ["a\\1"]
