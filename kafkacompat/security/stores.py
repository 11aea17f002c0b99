"""The security state Kafka keeps in its cluster metadata: ACLs, SCRAM credentials and quota values.

One set per data directory. A broker alone opens its own; the brokers of an
in-process cluster (cluster/runtime.py) share the set in the cluster's data
directory, so an ACL, a SCRAM user or a quota created through any broker
holds on every broker at once, as in Kafka. What is measured per broker
(quota usage, SASL sessions) stays with each broker.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from kafkacompat.security.authorizer import Authorizer, open_authorizer
from kafkacompat.security.credentials import CredentialStore
from kafkacompat.security.endpoint_security import config_users
from kafkacompat.security.quotas import QuotaStore

if TYPE_CHECKING:
    from kafkacompat.config import BrokerConfig


@dataclass
class SecurityStores:
    authorizer: Authorizer | None  # None when authorizer.class.name is empty
    scram_credentials: CredentialStore
    quota_values: QuotaStore

    @classmethod
    def open(cls, config: BrokerConfig, data_dir: Path) -> SecurityStores:
        return cls(open_authorizer(config.get("authorizer.class.name"), config.get("super.users"),
                                   config.get_bool("allow.everyone.if.no.acl.found"), data_dir),
                   CredentialStore(data_dir, config_users(config)), QuotaStore(data_dir))

    def close(self) -> None:
        self.quota_values.close()
        if self.authorizer is not None:
            self.authorizer.store.close()
