"""The principal of a connection, as Kafka's DefaultKafkaPrincipalBuilder makes it.

SASL: ``User:<authorization id>``. TLS with a client certificate: the
certificate's subject DN in RFC 2253 form (``CN=app,OU=eng,O=Example``, the
most specific attribute first, as Java's X500Principal prints it), passed
through ``ssl.principal.mapping.rules``. No client certificate (or
PLAINTEXT): ``User:ANONYMOUS``.

Rules are Kafka's: a comma-separated list of ``DEFAULT`` (the DN unchanged)
and ``RULE:pattern/replacement/[L|U]``; the first rule whose pattern matches
the whole DN applies (``$1`` in the replacement is the first group, ``L``/``U``
lower or upper the result). A DN no rule matches cannot authenticate.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from kafkacompat.config import ConfigError

ANONYMOUS = "User:ANONYMOUS"
_RULE = re.compile(r"\s*(?:(DEFAULT)|RULE:((?:\\.|[^\\/])*)/((?:\\.|[^\\/])*)/([LU]?))\s*(?:,|$)")


class NoMatchingRule(Exception):
    """A certificate DN that no ssl.principal.mapping.rules rule maps."""


@dataclass(frozen=True)
class _Rule:
    pattern: re.Pattern[str] | None  # None: DEFAULT
    replacement: tuple[str | int, ...] = ()  # literal text and group numbers
    case: str = ""

    def apply(self, dn: str) -> str | None:
        if self.pattern is None:
            return dn
        if not self.pattern.fullmatch(dn):
            return None
        result = self.pattern.sub(lambda match: "".join(
            part if isinstance(part, str) else (match.group(part) or "") for part in self.replacement), dn, count=1)
        return result.lower() if self.case == "L" else result.upper() if self.case == "U" else result


def _java_replacement(text: str) -> tuple[str | int, ...]:
    """Java's replacement syntax: ``$1`` is a group, a backslash makes the next character literal."""
    return tuple(int(group) if group else escaped or literal
                 for escaped, group, literal in re.findall(r"\\(.)|\$(\d+)|(.)", text, re.S))


class PrincipalMapper:
    """``ssl.principal.mapping.rules`` parsed once; maps certificate DNs to principal names."""

    def __init__(self, rules: str = "DEFAULT") -> None:
        self._rules: list[_Rule] = []
        position, text = 0, rules.strip() or "DEFAULT"
        while position < len(text):
            match = _RULE.match(text, position)
            if match is None or match.end() == position:
                raise ConfigError(f"ssl.principal.mapping.rules: cannot read a rule at {text[position:]!r}")
            if match.group(1):
                self._rules.append(_Rule(None))
            else:
                try:
                    pattern = re.compile(match.group(2))
                except re.error as exc:
                    raise ConfigError(f"ssl.principal.mapping.rules: bad pattern {match.group(2)!r}: {exc}") from None
                self._rules.append(_Rule(pattern, _java_replacement(match.group(3)), match.group(4)))
            position = match.end()

    def principal_name(self, dn: str) -> str:
        for rule in self._rules:
            name = rule.apply(dn)
            if name is not None:
                return name
        raise NoMatchingRule(f"no ssl.principal.mapping.rules rule matches {dn!r}")


def certificate_dn(der: bytes) -> str:
    """The subject of a DER certificate in RFC 2253 order and spelling."""
    from cryptography import x509

    return x509.load_der_x509_certificate(der).subject.rfc4514_string()


def ssl_principal(der: bytes | None, mapper: PrincipalMapper) -> str:
    return ANONYMOUS if not der else "User:" + mapper.principal_name(certificate_dn(der))
