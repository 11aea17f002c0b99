"""What each listener demands of its connections, built once at start from Kafka-named settings.

An SSL or SASL_SSL listener has a TLS context (:mod:`.tls`); a SASL listener
has its enabled mechanisms, each with the users it accepts: PLAIN the
``user_<name>`` entries of its PlainLoginModule JAAS config
(``listener.name.<l>.plain.sasl.jaas.config``) and ``sasl.users``; SCRAM the
credential store; OAUTHBEARER its token rules. Settings that cannot work
are refused here, before anything listens.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable
from urllib.parse import unquote, urlparse

from kafkacompat.config import ConfigError
from kafkacompat.listeners import Endpoint
from kafkacompat.security.credentials import CredentialStore
from kafkacompat.security.principal import PrincipalMapper
from kafkacompat.security.sasl import SaslMechanism
from kafkacompat.security.sasl.jaas import OAUTHBEARER_MODULE, PLAIN_MODULE, SCRAM_MODULE, parse_jaas, plain_users
from kafkacompat.security.sasl.oauthbearer import OAuthBearerServer, TokenRules, load_jwks
from kafkacompat.security.sasl.plain import PlainServer
from kafkacompat.security.sasl.scram import HASHES, ScramServer
from kafkacompat.security.sasl.session import SaslSession
from kafkacompat.security.tls import server_context

if TYPE_CHECKING:
    from kafkacompat.config import BrokerConfig

SUPPORTED_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER")
_MODULES = {"PLAIN": PLAIN_MODULE, "SCRAM-SHA-256": SCRAM_MODULE, "SCRAM-SHA-512": SCRAM_MODULE,
            "OAUTHBEARER": OAUTHBEARER_MODULE}


def config_users(config: "BrokerConfig") -> dict[str, str]:
    """``sasl.users=alice:secret,bob:pw`` -> {user: password}."""
    users = {}
    for entry in filter(None, (part.strip() for part in config.get("sasl.users").split(","))):
        user, sep, password = entry.partition(":")
        if not sep or not user:
            raise ConfigError("sasl.users: expected user:password[,user:password...]")
        users[user] = password
    return users


def _jaas_options(config: "BrokerConfig", listener: str, mechanism: str) -> tuple[dict[str, str], dict[str, str]]:
    """(login module options, PLAIN users) from the listener's JAAS config for ``mechanism``."""
    text = config.listener_value(listener, f"{mechanism.lower()}.sasl.jaas.config") or \
        config.listener_value(listener, "sasl.jaas.config")
    modules = parse_jaas(text) if text else []
    for module in modules:
        if module.class_name not in _MODULES.values():
            raise ConfigError(f"sasl.jaas.config of listener {listener}: login module {module.class_name} "
                              "is not supported")
    wanted = [m for m in modules if m.class_name == _MODULES[mechanism]]
    return (wanted[0].options if wanted else {}), plain_users(wanted)


def _token_rules(config: "BrokerConfig", listener: str, options: dict[str, str]) -> TokenRules:
    jwks = None
    url = config.listener_value(listener, "sasl.oauthbearer.jwks.endpoint.url")
    if url:
        parsed = urlparse(url)
        if parsed.scheme != "file":
            raise ConfigError("sasl.oauthbearer.jwks.endpoint.url: only file: URLs are supported")
        try:
            with open(unquote(parsed.path), encoding="utf-8") as handle:
                jwks = load_jwks(handle.read())
        except (OSError, ValueError) as exc:
            raise ConfigError(f"sasl.oauthbearer.jwks.endpoint.url: cannot read {url}: {exc}") from None
    audiences = tuple(a.strip() for a in config.listener_value(listener, "sasl.oauthbearer.expected.audience")
                      .split(",") if a.strip())
    try:
        skew_ms = int(options.get("unsecuredValidatorAllowableClockSkewMs", "0"))
    except ValueError:
        raise ConfigError("unsecuredValidatorAllowableClockSkewMs must be an integer") from None
    return TokenRules(
        principal_claim=options.get("unsecuredValidatorPrincipalClaimName",
                                    config.listener_value(listener, "sasl.oauthbearer.sub.claim.name")),
        scope_claim=options.get("unsecuredValidatorScopeClaimName",
                                config.listener_value(listener, "sasl.oauthbearer.scope.claim.name")),
        required_scopes=tuple(options.get("unsecuredValidatorRequiredScope", "").split()),
        clock_skew_ms=skew_ms, audiences=audiences, jwks=jwks)


@dataclass
class EndpointSecurity:
    """One listener's TLS context, principal mapping and SASL mechanisms."""

    endpoint: Endpoint
    ssl_context: ssl.SSLContext | None
    principal_mapper: PrincipalMapper
    mechanisms: dict[str, Callable[[], SaslMechanism]]
    reauth_ms: int

    def new_session(self, clock: Callable[[], int]) -> SaslSession | None:
        return SaslSession(self.mechanisms, self.reauth_ms, clock) if self.endpoint.uses_sasl else None


def endpoint_security(config: "BrokerConfig", endpoint: Endpoint, credentials: CredentialStore,
                      clock: Callable[[], int]) -> EndpointSecurity:
    listener = endpoint.name
    context = server_context(config, listener) if endpoint.uses_tls else None
    mapper = PrincipalMapper(config.listener_value(listener, "ssl.principal.mapping.rules"))
    mechanisms: dict[str, Callable[[], SaslMechanism]] = {}
    if endpoint.uses_sasl:
        names = [m.strip().upper() for m in config.listener_value(listener, "sasl.enabled.mechanisms").split(",")
                 if m.strip()]
        unsupported = [m for m in names if m not in SUPPORTED_MECHANISMS]
        if unsupported or not names:
            raise ConfigError(f"sasl.enabled.mechanisms of listener {listener}: {', '.join(unsupported) or 'none'} "
                              f"not supported (choose from {', '.join(SUPPORTED_MECHANISMS)})")
        for name in names:
            options, users = _jaas_options(config, listener, name)
            if name == "PLAIN":
                passwords = {**config_users(config), **users}
                if not passwords:
                    raise ConfigError(f"PLAIN on listener {listener} has no users: set sasl.users or "
                                      f"listener.name.{listener.lower()}.plain.sasl.jaas.config")
                mechanisms[name] = lambda passwords=passwords: PlainServer(passwords.get)
            elif name in HASHES:
                mechanisms[name] = lambda name=name: ScramServer(name, lambda user: credentials.credential(user, name))
            else:
                rules = _token_rules(config, listener, options)
                mechanisms[name] = lambda rules=rules: OAuthBearerServer(rules, clock)
    reauth = config.listener_value(listener, "connections.max.reauth.ms")
    if not reauth.isdigit():
        raise ConfigError(f"connections.max.reauth.ms of listener {listener} must be a non-negative integer")
    return EndpointSecurity(endpoint, context, mapper, mechanisms, int(reauth))
