"""Cluster feature levels (KIP-584): what this broker supports, what is finalized, and Kafka's
rules for changing the finalized levels with UpdateFeatures.

Theory of operation.  A feature is a name with an integer level.  Each broker
supports a range of levels per feature; the cluster finalizes one level, and
clients read both from ApiVersions (v3+) to decide what they may use.  `metadata.version`
is supported up to 3.9-IV0 (the Kafka release whose API versions we serve),
`group.version` up to 1 (KIP-848 consumer groups, finalized at 1 in a
new cluster as Kafka 4 does; at 0 the consumer protocol's APIs are refused),
`share.version` up to 1 (KIP-932 share groups, finalized in a new data
directory; 0 turns share groups off) and `transaction.version` up to 2
(finalized at 2 on a new data directory, as Kafka 4 formats one: transactions
v2, KIP-890 part 2).  Clients read the finalized level to choose their
protocol: at 2 the Java client and franz-go send Produce v12, TxnOffsetCommit
v5 and EndTxn v5 and no AddPartitionsToTxn; below 2 they keep the older
versions.  As in Kafka, the coordinator follows the version of each request,
not the finalized level, so lowering it changes what clients send, not how a
request is answered. `kraft.version` stays at 0 until its protocol exists
(KIP-853); like Kafka, ApiVersions omits a feature whose supported maximum is 0.

An update is checked feature by feature in request order, as Kafka's
controller checks it, and the first failure fails the whole request
(INVALID_UPDATE_VERSION); `validate_only` checks without applying.  A
`metadata.version` downgrade is allowed only as a safe downgrade that loses
no metadata (no level in between changed the metadata format); Kafka does
not implement unsafe downgrades.

On disk, `<data_dir>/features.json`: {"epoch": N, "levels": {name: level}}
(levels above 0 only), replaced atomically on every applied change; the
epoch counts applied changes and is ApiVersions' finalized_features_epoch.
Not safe for concurrent use: the broker calls it from its one thread.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from kafkacompat.log.durable import read_json, write_json_atomically
from kafkacompat.protocol.errors import ErrorCode, KafkaError

FEATURES_FILE = "features.json"
METADATA_VERSION = "metadata.version"
# Kafka's metadata.version levels: (level, name, whether that level changed the metadata format).
METADATA_VERSIONS = [
    (1, "3.0-IV1", True), (2, "3.1-IV0", False), (3, "3.2-IV0", True), (4, "3.3-IV0", False),
    (5, "3.3-IV1", True), (6, "3.3-IV2", True), (7, "3.3-IV3", True), (8, "3.4-IV0", True),
    (9, "3.5-IV0", False), (10, "3.5-IV1", False), (11, "3.5-IV2", True), (12, "3.6-IV0", False),
    (13, "3.6-IV1", True), (14, "3.6-IV2", True), (15, "3.7-IV0", True), (16, "3.7-IV1", False),
    (17, "3.7-IV2", True), (18, "3.7-IV3", False), (19, "3.7-IV4", False), (20, "3.8-IV0", False),
    (21, "3.9-IV0", False),
]
_METADATA_NAMES = {level: name for level, name, _ in METADATA_VERSIONS}
_METADATA_CHANGED = {level: changed for level, _, changed in METADATA_VERSIONS}
# The first level with FeatureLevelRecord, below which Kafka refuses to go.
MINIMUM_BOOTSTRAP_LEVEL = 4
GROUP_VERSION = "group.version"
SHARE_VERSION = "share.version"
TRANSACTION_VERSION = "transaction.version"
SUPPORTED = {METADATA_VERSION: (METADATA_VERSIONS[0][0], METADATA_VERSIONS[-1][0]), GROUP_VERSION: (0, 1),
             SHARE_VERSION: (0, 1), TRANSACTION_VERSION: (0, 2)}
# Features Kafka knows that this broker supports only at level 0 (disabled).
DISABLED_FEATURES = ("kraft.version",)
# What a new cluster finalizes: the newest metadata.version and, as in Kafka 4, group.version 1 (KIP-848);
# share.version 1 (KIP-932's share groups, Kafka 4.2's default); transaction.version 2 (KIP-890 part 2).
NEW_CLUSTER_LEVELS = {METADATA_VERSION: SUPPORTED[METADATA_VERSION][1], GROUP_VERSION: 1, SHARE_VERSION: 1,
                      TRANSACTION_VERSION: 2}


class UpgradeType(enum.IntEnum):
    UNKNOWN = 0
    UPGRADE = 1
    SAFE_DOWNGRADE = 2
    UNSAFE_DOWNGRADE = 3

    @classmethod
    def from_code(cls, code: int) -> UpgradeType:
        return cls(code) if code in cls._value2member_map_ else cls.UNKNOWN


@dataclass(frozen=True)
class FeatureUpdate:
    feature: str
    max_version_level: int
    upgrade_type: UpgradeType


def _version_range(low: int, high: int) -> str:
    return str(low) if low == high else f"{low}-{high}"


def metadata_changed_between(high: int, low: int) -> bool:
    """Whether any level in (low, high] changed the metadata format (Kafka's checkIfMetadataChanged)."""
    return any(_METADATA_CHANGED[level] for level in range(low + 1, high + 1))


class FinalizedFeatures:
    """The cluster's finalized feature levels, durable in the data directory."""

    def __init__(self, data_dir: Path, node_id: int) -> None:
        self._path = Path(data_dir) / FEATURES_FILE
        self._node_id = node_id
        stored = read_json(self._path)
        if isinstance(stored, dict):
            self.epoch = int(stored["epoch"])
            self.levels = {str(name): int(level) for name, level in stored["levels"].items()}
        else:
            self.epoch = 0
            self.levels = dict(NEW_CLUSTER_LEVELS)

    def update(self, updates: Iterable[FeatureUpdate], *, validate_only: bool) -> None:
        """Apply `updates` all together, or raise KafkaError(INVALID_UPDATE_VERSION) for the first bad one."""
        updates = list(updates)
        proposed = dict(self.levels)
        for update in updates:
            self._check(update)
            proposed[update.feature] = update.max_version_level
        if validate_only or not updates:
            return
        levels = {name: level for name, level in proposed.items() if level > 0}
        write_json_atomically(self._path, {"epoch": self.epoch + 1, "levels": levels})
        self.epoch += 1
        self.levels = levels

    def _check(self, update: FeatureUpdate) -> None:
        name, level, upgrade_type = update.feature, update.max_version_level, update.upgrade_type

        def refuse(reason: str) -> KafkaError:
            return KafkaError(ErrorCode.INVALID_UPDATE_VERSION,
                              f"Invalid update version {level} for feature {name}. {reason}")

        if upgrade_type == UpgradeType.UNKNOWN:
            raise refuse("The controller does not support the given upgrade type.")
        if level < 0:
            raise refuse("A feature version cannot be less than 0.")
        low, high = SUPPORTED.get(name, (0, 0))
        if not low <= level <= high:
            where = f"Local controller {self._node_id}"
            raise refuse(f"{where} does not support this feature." if high == 0
                         else f"{where} only supports versions {_version_range(low, high)}")
        current = self.levels.get(name, 0)
        if level < current and upgrade_type == UpgradeType.UPGRADE:
            raise refuse("Can't downgrade the version of this feature without setting the "
                         "upgrade type to either safe or unsafe downgrade.")
        if level > current and upgrade_type != UpgradeType.UPGRADE:
            raise refuse("Can't downgrade to a newer version.")
        if name == METADATA_VERSION:
            self._check_metadata_version(level, current, upgrade_type)
        elif name not in SUPPORTED and name not in DISABLED_FEATURES:
            raise refuse(f"Feature {name} not found.")

    @staticmethod
    def _check_metadata_version(level: int, current: int, upgrade_type: UpgradeType) -> None:
        def refuse(reason: str) -> KafkaError:
            return KafkaError(ErrorCode.INVALID_UPDATE_VERSION, f"Invalid metadata.version {level}. {reason}")

        if level < MINIMUM_BOOTSTRAP_LEVEL:
            raise refuse(f"Unable to set a metadata.version less than {_METADATA_NAMES[MINIMUM_BOOTSTRAP_LEVEL]}")
        if level < current and metadata_changed_between(current, level):
            if upgrade_type == UpgradeType.UNSAFE_DOWNGRADE:
                raise refuse("Unsafe metadata downgrade is not supported in this version.")
            raise refuse("Refusing to perform the requested downgrade because it might delete metadata information.")
