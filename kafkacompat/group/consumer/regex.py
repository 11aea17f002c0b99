"""Topic subscription by regular expression: Kafka's RE2/J syntax, restated for Python's ``re``.

Kafka compiles ``SubscribedTopicRegex`` with RE2/J and subscribes to every
topic whose whole name matches. Python's ``re`` agrees with RE2 on the
syntax subscriptions use (literals, ``.``, classes, ``|``, groups, repeats,
``(?i)``-style flags, ``\\d \\w \\s`` and ``\\b``); this module translates the
RE2 spellings Python lacks and refuses what RE2 itself would refuse:

- translated: ``\\z`` (end of text) to ``\\Z``; ``\\Q...\\E`` (quoted text) to
  the escaped text; RE2's fourteen POSIX classes inside brackets
  (``[[:alpha:]]``, ``[[:digit:]]``, ...) to ASCII ranges; ``(?<name>...)``
  to ``(?P<name>...)``.
- refused (INVALID_REGULAR_EXPRESSION), because RE2 has no such thing:
  backreferences (``\\1``, ``(?P=name)``), lookaround (``(?=``, ``(?!``,
  ``(?<=``, ``(?<!``), conditionals ``(?(``, possessive and atomic forms.
- refused because Python cannot express them faithfully: Unicode classes
  ``\\p{...}`` / ``\\P{...}``, ``\\C`` and negated POSIX classes ``[[:^alpha:]]``.
"""

from __future__ import annotations

import re

from kafkacompat.protocol.errors import ErrorCode, KafkaError

_POSIX = {
    "alnum": "0-9A-Za-z", "alpha": "A-Za-z", "ascii": "\\x00-\\x7f", "blank": "\\t ",
    "cntrl": "\\x00-\\x1f\\x7f", "digit": "0-9", "graph": "!-~", "lower": "a-z",
    "print": " -~", "punct": "!-/:-@\\[-`{-~", "space": "\\t\\n\\v\\f\\r ", "upper": "A-Z",
    "word": "0-9A-Za-z_", "xdigit": "0-9A-Fa-f",
}
_REFUSED = [
    (re.compile(r"\\[1-9]"), "backreferences"),
    (re.compile(r"\(\?P="), "backreferences"),
    (re.compile(r"\(\?<?[=!]"), "lookaround"),
    (re.compile(r"\(\?\("), "conditionals"),
    (re.compile(r"\(\?>"), "atomic groups"),
    (re.compile(r"[*+?}]\+"), "possessive repeats"),
    (re.compile(r"\\[pPC]"), "Unicode classes"),
]


def _unquote(match: re.Match[str]) -> str:
    return re.escape(match.group(1))


def translate(pattern: str) -> re.Pattern[str]:
    """Compile an RE2/J subscription pattern; raises KafkaError(INVALID_REGULAR_EXPRESSION)."""
    text = re.sub(r"\\Q(.*?)(?:\\E|$)", _unquote, pattern, flags=re.S)
    unescaped = re.sub(r"\\\\", "", text)  # escaped backslashes cannot start a construct
    for construct, what in _REFUSED:
        if construct.search(unescaped):
            raise KafkaError(ErrorCode.INVALID_REGULAR_EXPRESSION,
                             f"Invalid regular expression {pattern!r}: RE2 does not support {what}")
    text = re.sub(r"\[:(\^?)([a-z]+):\]", lambda m: _posix(pattern, m), text)
    text = text.replace("(?<", "(?P<").replace(r"\z", r"\Z")
    try:
        return re.compile(text, re.ASCII)  # RE2's \d, \w, \s and \b are ASCII-only
    except re.error as exc:
        raise KafkaError(ErrorCode.INVALID_REGULAR_EXPRESSION,
                         f"Invalid regular expression {pattern!r}: {exc}") from None


def _posix(pattern: str, match: re.Match[str]) -> str:
    ranges = _POSIX.get(match.group(2))
    if ranges is None or match.group(1):
        raise KafkaError(ErrorCode.INVALID_REGULAR_EXPRESSION,
                         f"Invalid regular expression {pattern!r}: unknown class [:{match.group(1)}{match.group(2)}:]")
    return ranges


def matching_topics(compiled: re.Pattern[str], topics: list[str]) -> list[str]:
    """The topics whose whole name matches, as RE2/J's ``matches()`` decides."""
    return [name for name in topics if compiled.fullmatch(name)]
