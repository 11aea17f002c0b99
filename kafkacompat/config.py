"""Broker configuration, by Apache Kafka's own config names.

Sources, later ones winning: built-in defaults, a YAML file or a Java
``.properties`` file such as Kafka's ``server.properties`` (``--config``),
``KAFKACOMPAT_CONFIG_*`` environment variables (``KAFKACOMPAT_CONFIG_LOG_RETENTION_MS`` sets
``log.retention.ms``), ``-o name=value`` flags, and the dedicated CLI flags
(``--host``, ``--port``, ``--data-dir``, ``--advertised-host/-port``), which map
onto ``listeners``, ``log.dirs`` and ``advertised.listeners``.

Defaults are Kafka's, except where a dev broker should differ (said per entry).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Mapping

import yaml

from kafkacompat.properties import is_properties_file, read_properties

ENV_PREFIX = "KAFKACOMPAT_CONFIG_"


@dataclass(frozen=True)
class ConfigDef:
    name: str
    type: str  # Kafka's config types: boolean, string, int, short, long, double, list
    default: str
    doc: str
    # The topic-level config this broker config supplies the default for.
    topic_config: str | None = None


_DEFS = [
    ConfigDef("node.id", "int", "1", "Id of this broker in Metadata and DescribeCluster."),
    ConfigDef("cluster.brokers", "int", "1",
              "Our own: brokers run in this process (node ids 1..N, ports from the listener's on, "
              "data in log.dirs/broker-N); 1 is a plain single broker."),
    ConfigDef("cluster.ports", "list", "", "Our own: the brokers' listener ports, in node order, instead of consecutive ones."),
    ConfigDef("broker.rack", "string", "", "Rack of this broker; with cluster.brokers, a list in node order."),
    ConfigDef("replica.lag.time.max.ms", "long", "30000",
              "A follower not caught up with its leader for this long leaves the ISR."),
    ConfigDef("unclean.leader.election.enable", "boolean", "false",
              "Let an out-of-sync replica lead when no in-sync one is alive (records may be lost)."),
    ConfigDef("auto.leader.rebalance.enable", "boolean", "true", "Move leadership back to preferred replicas."),
    ConfigDef("leader.imbalance.check.interval.seconds", "long", "300", "How often preferred leaders are restored."),
    ConfigDef("replica.selector.class", "string", "",
              "org.apache.kafka.common.replica.RackAwareReplicaSelector sends consumers to their rack's replica."),
    ConfigDef("offsets.topic.num.partitions", "int", "50", "Partitions of __consumer_offsets: group placement."),
    ConfigDef("offsets.topic.replication.factor", "short", "3", "Replicas of each __consumer_offsets partition."),
    ConfigDef("broker.session.timeout.ms", "int", "9000",
              "A cluster broker paused or isolated from the others this long is fenced: its leaderships move."),
    ConfigDef("transaction.state.log.num.partitions", "int", "50",
              "Partitions of __transaction_state: transaction coordinator placement."),
    ConfigDef("transaction.state.log.replication.factor", "short", "3",
              "Replicas of each __transaction_state partition."),
    ConfigDef("listeners", "list", "PLAINTEXT://127.0.0.1:9092", "Where the broker accepts connections."),
    ConfigDef("advertised.listeners", "list", "", "Address handed to clients in Metadata; empty means the listener."),
    ConfigDef("listener.security.protocol.map", "list",
              "PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT,SASL_SSL:SASL_SSL",
              "Listener name -> security protocol."),
    ConfigDef("inter.broker.listener.name", "string", "", "Accepted and checked; one broker talks to no other."),
    ConfigDef("controller.listener.names", "list", "", "Listeners left unopened: this broker has no separate controller."),
    ConfigDef("http.listeners", "string", "", "Our own: http://HOST:PORT of the admin API and /metrics; empty is off."),
    ConfigDef("telemetry.max.bytes", "int", "1048576", "Largest client metrics push accepted (KIP-714)."),
    ConfigDef("log.dirs", "string", "./kafkacompat-data", "Directory holding topics, offsets and broker metadata."),
    ConfigDef("num.partitions", "int", "1", "Partitions of an auto-created or -1-partition topic."),
    ConfigDef("default.replication.factor", "short", "1", "Replication factor used when a request asks for -1."),
    ConfigDef("auto.create.topics.enable", "boolean", "true", "Create unknown topics on Metadata or Produce."),
    ConfigDef("delete.topic.enable", "boolean", "true", "Allow DeleteTopics."),
    ConfigDef("message.max.bytes", "int", "1048588", "Largest record batch accepted.", "max.message.bytes"),
    ConfigDef("log.segment.bytes", "int", "1073741824", "Size at which a segment is rolled.", "segment.bytes"),
    ConfigDef("log.roll.ms", "long", "604800000", "Age at which a segment is rolled.", "segment.ms"),
    ConfigDef("log.retention.ms", "long", "604800000", "Age after which closed segments are deleted.", "retention.ms"),
    ConfigDef("log.retention.bytes", "long", "-1", "Partition size above which old segments are deleted.", "retention.bytes"),
    ConfigDef("log.cleanup.policy", "list", "delete", "delete, compact, or both.", "cleanup.policy"),
    ConfigDef("log.cleaner.delete.retention.ms", "long", "86400000", "How long tombstones survive compaction.", "delete.retention.ms"),
    ConfigDef("log.index.interval.bytes", "int", "4096", "Bytes between sparse offset index entries.", "index.interval.bytes"),
    ConfigDef("log.message.timestamp.type", "string", "CreateTime", "CreateTime or LogAppendTime.", "message.timestamp.type"),
    ConfigDef("log.flush.interval.messages", "long", "9223372036854775807", "Records between forced flushes.", "flush.messages"),
    ConfigDef("log.flush.interval.ms", "long", "9223372036854775807", "Milliseconds between forced flushes.", "flush.ms"),
    ConfigDef("min.insync.replicas", "int", "1", "Replicas that must acknowledge acks=all.", "min.insync.replicas"),
    ConfigDef("compression.type", "string", "producer", "Compression kept on disk; producer keeps what was sent.", "compression.type"),
    ConfigDef("fetch.max.bytes", "int", "57671680",
              "Largest Fetch response, whatever the request asks (its first batch is sent whole)."),
    ConfigDef("max.incremental.fetch.session.cache.slots", "int", "1000",
              "Incremental fetch sessions (KIP-227) kept at once; 0 turns them off."),
    ConfigDef("socket.request.max.bytes", "int", "104857600", "Largest request frame; larger closes the connection."),
    ConfigDef("connections.max.idle.ms", "long", "600000", "Idle connections are closed after this long."),
    ConfigDef("max.connections", "int", "2147483647", "Connections beyond this (or the fd limit) are closed at once."),
    # Kafka waits 3 s before the first rebalance of a new group, and again while
    # members keep arriving. 300 ms is short for a dev broker yet long enough
    # that consumers started a few hundred ms apart share generation 1.
    ConfigDef("group.initial.rebalance.delay.ms", "int", "300", "Delay before the first rebalance of an empty group."),
    ConfigDef("group.min.session.timeout.ms", "int", "6000", "Smallest session timeout a member may ask for."),
    ConfigDef("group.max.session.timeout.ms", "int", "1800000", "Largest session timeout a member may ask for."),
    ConfigDef("group.consumer.heartbeat.interval.ms", "int", "5000", "Heartbeat interval given to KIP-848 members."),
    ConfigDef("group.consumer.min.heartbeat.interval.ms", "int", "5000", "Smallest allowed heartbeat interval."),
    ConfigDef("group.consumer.max.heartbeat.interval.ms", "int", "15000", "Largest allowed heartbeat interval."),
    ConfigDef("group.consumer.session.timeout.ms", "int", "45000", "KIP-848 members silent this long are fenced."),
    ConfigDef("group.consumer.min.session.timeout.ms", "int", "45000", "Smallest allowed session timeout."),
    ConfigDef("group.consumer.max.session.timeout.ms", "int", "60000", "Largest allowed session timeout."),
    ConfigDef("group.consumer.max.size", "int", "2147483647", "Members a KIP-848 group may have."),
    ConfigDef("group.consumer.assignors", "list", "uniform,range",
              "Server-side assignors (uniform, range); the first is the default."),
    ConfigDef("group.consumer.migration.policy", "string", "bidirectional",
              "disabled, upgrade, downgrade or bidirectional: which ways a group converts online (see COMPATIBILITY)."),
    ConfigDef("offsets.retention.minutes", "int", "10080", "How long an empty group keeps committed offsets."),
    ConfigDef("group.share.heartbeat.interval.ms", "int", "5000", "Heartbeat interval handed to share group members."),
    ConfigDef("group.share.session.timeout.ms", "int", "45000", "A share group member silent this long is removed."),
    ConfigDef("group.share.record.lock.duration.ms", "int", "30000",
              "How long a share group member holds acquired records before they are released."),
    ConfigDef("group.share.min.record.lock.duration.ms", "int", "15000",
              "Smallest share.record.lock.duration.ms a group config may set."),
    ConfigDef("group.share.max.record.lock.duration.ms", "int", "60000",
              "Largest share.record.lock.duration.ms a group config may set."),
    ConfigDef("group.share.delivery.count.limit", "int", "5",
              "Deliveries of a record to share group members before it is archived."),
    ConfigDef("group.share.max.size", "int", "200", "Most members a share group may have."),
    ConfigDef("group.share.partition.max.record.locks", "int", "2000",
              "Most records a share group may have in flight on one partition (100 to 10000)."),
    ConfigDef("offsets.retention.check.interval.ms", "long", "600000", "How often expired offsets are removed."),
    # Our own name (Kafka has none): durable acknowledgements unless a topic asks for periodic flushing.
    ConfigDef("log.flush.on.ack", "boolean", "true",
              "Answer acks=1/-1 produces only once their records are fsynced (group commit), and show "
              "records to consumers only then. Topics with a finite flush.messages or flush.ms use "
              "Kafka's periodic flushing instead; false makes every topic do so."),
    ConfigDef("num.recovery.threads.per.data.dir", "int", "2",
              "Threads opening partitions after an unclean stop (Kafka's default since 3.7)."),
    ConfigDef("log.flush.offset.checkpoint.interval.ms", "int", "1000",
              "How often the recovery points (what an unclean restart need not re-scan) are persisted, "
              "when they moved; with them the state of each fully fsynced partition, which an unclean "
              "restart then opens unread. Kafka's default is 60000."),
    ConfigDef("log.retention.check.interval.ms", "long", "300000",
              "How often retention (retention.ms, retention.bytes) deletes expired segments."),
    ConfigDef("log.cleaner.enable", "boolean", "true", "Compact topics whose cleanup.policy includes compact."),
    ConfigDef("log.cleaner.backoff.ms", "long", "15000", "Pause between log cleaner passes."),
    ConfigDef("log.cleaner.dedupe.buffer.size", "long", "134217728",
              "Bounds the keys mapped per cleaning, at 24 bytes a key as Kafka counts them."),
    ConfigDef("log.cleaner.min.cleanable.ratio", "double", "0.5",
              "Dirty fraction of the cleanable log that makes a partition due.", "min.cleanable.dirty.ratio"),
    ConfigDef("log.cleaner.min.compaction.lag.ms", "long", "0",
              "Records younger than this are not compacted yet.", "min.compaction.lag.ms"),
    ConfigDef("authorizer.class.name", "string", "",
              "Empty: no authorizer. Kafka's org.apache.kafka.metadata.authorizer.StandardAuthorizer "
              "turns ACL checks on; any other class is refused at start."),
    ConfigDef("super.users", "list", "", "Principals (User:NAME;User:OTHER) the authorizer always allows."),
    ConfigDef("allow.everyone.if.no.acl.found", "boolean", "false",
              "With the authorizer on: allow a resource no ACL applies to."),
    ConfigDef("quota.window.num", "int", "11", "Samples a client quota's rate is measured over."),
    ConfigDef("quota.window.size.seconds", "int", "1", "Length of one client quota sample."),
    ConfigDef("log.cleaner.max.compaction.lag.ms", "long", "9223372036854775807",
              "Uncleaned records older than this make a partition due.", "max.compaction.lag.ms"),
    ConfigDef("transaction.max.timeout.ms", "int", "900000",
              "Largest transaction.timeout.ms a producer may ask for (else INVALID_TRANSACTION_TIMEOUT)."),
    # Kafka checks every 10 s; a dev broker aborts an abandoned transaction within a second of its timeout.
    ConfigDef("transaction.abort.timed.out.transaction.cleanup.interval.ms", "int", "1000",
              "How often transactions past their timeout are aborted (their producer fenced)."),
    ConfigDef("transactional.id.expiration.ms", "int", "604800000",
              "A transactional id idle this long (no transaction open) is forgotten."),
    ConfigDef("add.partitions.to.txn.retry.backoff.ms", "int", "20",
              "Produce v12: how often a partition's join of a transaction still completing is retried."),
    ConfigDef("add.partitions.to.txn.retry.backoff.max.ms", "int", "100",
              "Produce v12: how long those retries last before the client gets NOT_ENOUGH_REPLICAS."),
]

# TLS and SASL (kafkacompat.security); each may also be set for one listener as listener.name.<l>.<name>.
SECURITY_DEFS = [
    ConfigDef("ssl.keystore.type", "string", "PEM", "Only PEM: key and certificate chain in one file or inline."),
    ConfigDef("ssl.keystore.location", "string", "", "PEM file holding the private key and the certificate chain."),
    ConfigDef("ssl.keystore.password", "password", "", "Passphrase of an encrypted key in the keystore file."),
    ConfigDef("ssl.key.password", "password", "", "Passphrase of the private key (wins over ssl.keystore.password)."),
    ConfigDef("ssl.keystore.certificate.chain", "password", "", "Inline PEM certificate chain."),
    ConfigDef("ssl.keystore.key", "password", "", "Inline PEM private key."),
    ConfigDef("ssl.truststore.type", "string", "PEM", "Only PEM."),
    ConfigDef("ssl.truststore.location", "string", "", "PEM file of CA certificates client certificates must chain to."),
    ConfigDef("ssl.truststore.certificates", "password", "", "Inline PEM CA certificates."),
    ConfigDef("ssl.truststore.password", "password", "", "Ignored for PEM truststores, as in Kafka."),
    ConfigDef("ssl.client.auth", "string", "none", "none, requested or required: client certificates."),
    ConfigDef("ssl.enabled.protocols", "list", "TLSv1.2,TLSv1.3", "TLS versions offered (TLSv1.2, TLSv1.3)."),
    ConfigDef("ssl.protocol", "string", "TLSv1.3", "Accepted for Kafka's sake; ssl.enabled.protocols decides."),
    ConfigDef("ssl.cipher.suites", "list", "", "OpenSSL cipher list for TLSv1.2; empty is OpenSSL's default."),
    ConfigDef("ssl.endpoint.identification.algorithm", "string", "https", "Client side only: accepted."),
    ConfigDef("ssl.principal.mapping.rules", "string", "DEFAULT", "Certificate DN -> principal name rules."),
    ConfigDef("sasl.enabled.mechanisms", "list", "GSSAPI",
              "PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, OAUTHBEARER (GSSAPI is refused at start when a SASL "
              "listener would offer it)."),
    ConfigDef("sasl.mechanism.inter.broker.protocol", "string", "GSSAPI", "Accepted; one broker talks to no other."),
    ConfigDef("sasl.users", "password", "",
              "Our own: user:password,... accepted by PLAIN and, as in-memory credentials, SCRAM."),
    ConfigDef("sasl.oauthbearer.jwks.endpoint.url", "string", "",
              "file: URL of a JWKS; OAUTHBEARER tokens must then be signed by one of its keys (else unsecured)."),
    ConfigDef("sasl.oauthbearer.expected.audience", "list", "", "Audiences of which a token must name one."),
    ConfigDef("sasl.oauthbearer.sub.claim.name", "string", "sub", "Claim naming the principal."),
    ConfigDef("sasl.oauthbearer.scope.claim.name", "string", "scope", "Claim holding the scopes."),
    ConfigDef("connections.max.reauth.ms", "long", "0",
              "SASL session lifetime (KIP-368); 0 means sessions never expire."),
    ConfigDef("sasl.jaas.config", "password", "",
              "JAAS login modules; Kafka's PlainLoginModule user_<name>=\"<password>\" entries are PLAIN users."),
]
_DEFS += SECURITY_DEFS
BROKER_CONFIGS: dict[str, ConfigDef] = {d.name: d for d in _DEFS}
# Kafka's coarser spellings of two durations; the ms form wins, then minutes, as in Kafka.
_COARSE_DURATIONS = {
    "log.retention.minutes": ("log.retention.ms", 60_000),
    "log.retention.hours": ("log.retention.ms", 3_600_000),
    "log.roll.hours": ("log.roll.ms", 3_600_000),
}
# Security configs that may be given for one listener: listener.name.<listener>.<name>,
# and <mechanism>.sasl.jaas.config for one mechanism of it.
LISTENER_PREFIX = "listener.name."
_PER_LISTENER = {d.name for d in SECURITY_DEFS}
# Kafka settings that change nothing observable on one broker process (thread counts, socket
# buffers, replication of internal topics, KRaft roles): accepted and reported as accepted.
NO_EFFECT_CONFIGS = frozenset({
    "process.roles", "controller.quorum.voters", "controller.quorum.bootstrap.servers", "broker.id",
    "num.network.threads", "num.io.threads", "socket.send.buffer.bytes", "socket.receive.buffer.bytes",
    "transaction.state.log.min.isr", "share.coordinator.state.topic.replication.factor",
    "share.coordinator.state.topic.min.isr", "zookeeper.connect", "zookeeper.connection.timeout.ms",
})


class ConfigError(ValueError):
    """A config name or value the broker cannot use."""


def per_listener_name(name: str) -> tuple[str, str] | None:
    """``listener.name.<l>.<config>`` -> (l, config) when it is a setting a listener may carry."""
    if not name.startswith(LISTENER_PREFIX):
        return None
    listener, _, config = name[len(LISTENER_PREFIX):].partition(".")
    mechanism, _, rest = config.partition(".")
    if listener and (config in _PER_LISTENER or (mechanism and rest in _PER_LISTENER and rest.startswith("sasl."))):
        return listener, config
    return None


def _check_value(definition: ConfigDef, value: str) -> str:
    if definition.type in ("int", "short", "long"):
        try:
            int(value)
        except ValueError:
            raise ConfigError(f"{definition.name} must be an integer, got {value!r}") from None
    elif definition.type == "boolean" and value.lower() not in ("true", "false"):
        raise ConfigError(f"{definition.name} must be true or false, got {value!r}")
    return value.lower() if definition.type == "boolean" else value


def _as_config_string(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value)
    return str(value)


def parse_listener(listener: str) -> tuple[str, int]:
    """``PLAINTEXT://host:port`` (or ``host:port``) -> (host, port)."""
    address = listener.split(",")[0].strip()
    if "://" in address:
        address = address.split("://", 1)[1]
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise ConfigError(f"cannot read a host:port from listener {listener!r}")
    return host.strip("[]"), int(port)


class BrokerConfig:
    """Validated broker settings; values are kept as Kafka-style strings."""

    def __init__(self, overrides: Mapping[str, object] | None = None,
                 faults: list[Mapping[str, object]] | None = None) -> None:
        self._values: dict[str, str] = {}
        # Fault rules (kafkacompat.cluster.faults) from the YAML file's ``faults:`` list, not a Kafka config.
        self.faults = list(faults or [])
        # listener.name.<l>.<config> settings, as given (see listener_value).
        self._listener_values: dict[str, str] = {}
        overrides = dict(overrides or {})
        for coarse, (fine, unit_ms) in _COARSE_DURATIONS.items():
            if coarse in overrides:
                value = _as_config_string(overrides.pop(coarse))
                if not value.lstrip("-").isdigit():
                    raise ConfigError(f"{coarse} must be an integer, got {value!r}")
                overrides.setdefault(fine, str(int(value) * unit_ms))
        for name, value in overrides.items():
            if name in NO_EFFECT_CONFIGS:
                continue
            if per_listener_name(name) is not None:
                self._listener_values[name] = _as_config_string(value)
                continue
            definition = BROKER_CONFIGS.get(name)
            if definition is None:
                raise ConfigError(f"unknown broker config {name!r}")
            self._values[name] = _check_value(definition, _as_config_string(value))

    @classmethod
    def load(
        cls,
        config_file: Path | None = None,
        overrides: Mapping[str, object] | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> "BrokerConfig":
        merged: dict[str, object] = {}
        faults: object = []
        if config_file is not None and is_properties_file(Path(config_file)):
            merged.update(read_properties(Path(config_file)))
        elif config_file is not None:
            loaded = yaml.safe_load(Path(config_file).read_text()) or {}
            if not isinstance(loaded, dict):
                raise ConfigError(f"{config_file}: expected a mapping of config names to values")
            faults = loaded.pop("faults", None) or []
            if not isinstance(faults, list) or not all(isinstance(rule, dict) for rule in faults):
                raise ConfigError(f"{config_file}: faults must be a list of fault rules (mappings)")
            merged.update(loaded)
        for key, value in (os.environ if environ is None else environ).items():
            if key.startswith(ENV_PREFIX):
                merged[key[len(ENV_PREFIX):].lower().replace("_", ".")] = value
        merged.update(overrides or {})
        return cls(merged, faults)  # type: ignore[arg-type]

    def get(self, name: str) -> str:
        if name in self._values:
            return self._values[name]
        return BROKER_CONFIGS[name].default

    def listener_value(self, listener: str, name: str) -> str:
        """A security config as one listener sees it: its ``listener.name.<l>.`` setting, else the broker's."""
        prefixed = f"{LISTENER_PREFIX}{listener.lower()}.{name}"
        if prefixed in self._listener_values:
            return self._listener_values[prefixed]
        return self.get(name) if name in BROKER_CONFIGS else ""

    def get_int(self, name: str) -> int:
        return int(self.get(name))

    def get_bool(self, name: str) -> bool:
        return self.get(name).lower() == "true"

    def is_default(self, name: str) -> bool:
        return name not in self._values

    def items(self) -> Iterator[tuple[str, str, bool]]:
        """(name, value, is_default) for every known broker config."""
        for name in BROKER_CONFIGS:
            yield name, self.get(name), self.is_default(name)

    def broker_config_names(self) -> list[str]:
        return list(BROKER_CONFIGS)

    def topic_defaults(self) -> dict[str, str]:
        """Topic config name -> broker-level default, as the log engine wants them."""
        return {d.topic_config: self.get(d.name) for d in _DEFS if d.topic_config}

    @property
    def listener(self) -> tuple[str, int]:
        """The first listener's host and port."""
        return parse_listener(self.get("listeners"))

    @property
    def advertised_listener(self) -> tuple[str, int]:
        advertised = self.get("advertised.listeners")
        return parse_listener(advertised) if advertised else self.listener

    @property
    def data_dir(self) -> Path:
        return Path(self.get("log.dirs").split(",")[0])
