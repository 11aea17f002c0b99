"""sasl.jaas.config as a broker's server.properties writes it."""

from __future__ import annotations

import pytest

from kafkacompat.config import ConfigError
from kafkacompat.security.sasl.jaas import PLAIN_MODULE, parse_jaas, plain_users


def test_plain_login_module_users() -> None:
    text = (f'{PLAIN_MODULE} required username="admin" password="admin-secret" '
            'user_admin="admin-secret" user_alice="with \\"quote\\" and ; semicolon" user_bob=bare;')
    (module,) = parse_jaas(text)
    assert (module.class_name, module.flag, module.options["username"]) == (PLAIN_MODULE, "required", "admin")
    assert plain_users([module]) == {"admin": "admin-secret", "alice": 'with "quote" and ; semicolon', "bob": "bare"}


@pytest.mark.parametrize("text", [
    f"{PLAIN_MODULE} required user_a=\"x\"",  # no ending semicolon
    f"{PLAIN_MODULE} user_a=\"x\";",  # no control flag
    f"{PLAIN_MODULE} required user_a;",  # no value
])
def test_malformed_jaas_is_a_config_error(text: str) -> None:
    with pytest.raises(ConfigError):
        parse_jaas(text)
