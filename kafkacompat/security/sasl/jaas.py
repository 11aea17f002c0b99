"""The JAAS text of ``sasl.jaas.config``: ``<LoginModule class> <flag> key="value" ...;``.

Only what a broker's ``sasl.jaas.config`` carries is read: one or more
login module entries, each a class name, a control flag and options (values
quoted with ``"`` or bare), ended by ``;``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from kafkacompat.config import ConfigError

_FLAGS = ("required", "requisite", "sufficient", "optional")
_TOKEN = re.compile(r'\s*(?:"((?:\\.|[^"\\])*)"|([^\s=;"]+)|(=)|(;))')

PLAIN_MODULE = "org.apache.kafka.common.security.plain.PlainLoginModule"
SCRAM_MODULE = "org.apache.kafka.common.security.scram.ScramLoginModule"
OAUTHBEARER_MODULE = "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule"


@dataclass(frozen=True)
class LoginModule:
    class_name: str
    flag: str
    options: dict[str, str]


def _tokens(text: str) -> list[tuple[str, bool]]:
    """(token, was_quoted) pairs."""
    tokens, position = [], 0
    text = text.rstrip()
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None or match.end() == position:
            raise ConfigError(f"sasl.jaas.config: cannot read {text[position:position + 30]!r}")
        quoted, bare, equals, semicolon = match.groups()
        if quoted is not None:
            tokens.append((re.sub(r"\\(.)", r"\1", quoted), True))
        else:
            tokens.append((bare or equals or semicolon, False))
        position = match.end()
    return tokens


def parse_jaas(text: str) -> list[LoginModule]:
    tokens = _tokens(text)
    modules: list[LoginModule] = []
    i = 0
    while i < len(tokens):
        if i + 1 >= len(tokens) or tokens[i + 1][0] not in _FLAGS:
            raise ConfigError("sasl.jaas.config: expected '<LoginModule class> required|requisite|sufficient|optional'")
        class_name, flag = tokens[i][0], tokens[i + 1][0]
        i += 2
        options: dict[str, str] = {}
        while i < len(tokens) and not (tokens[i] == (";", False)):
            if i + 2 >= len(tokens) or tokens[i + 1] != ("=", False):
                raise ConfigError(f"sasl.jaas.config: expected key=value after {class_name}")
            options[tokens[i][0]] = tokens[i + 2][0]
            i += 3
        if i >= len(tokens):
            raise ConfigError("sasl.jaas.config: a login module entry must end with ';'")
        i += 1
        modules.append(LoginModule(class_name, flag, options))
    return modules


def plain_users(modules: list[LoginModule]) -> dict[str, str]:
    """PlainLoginModule's ``user_<name>="<password>"`` options."""
    users: dict[str, str] = {}
    for module in modules:
        if module.class_name == PLAIN_MODULE:
            users.update({key[5:]: value for key, value in module.options.items() if key.startswith("user_")})
    return users
