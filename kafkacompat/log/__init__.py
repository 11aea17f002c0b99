"""The log engine: record batches on disk, per partition, with Kafka's layout and rules.

Synchronous file I/O only; no networking, no event loop.  Handlers reach it
through LogManager (topics, configs, producer ids) and PartitionLog (append,
read, offset lookups).
"""

from kafkacompat.log.log_manager import LogManager, Topic, validate_topic_name
from kafkacompat.log.partition_log import AppendResult, PartitionLog
from kafkacompat.log.topic_config import TOPIC_CONFIGS, ConfigDef, ConfigType, LogConfig

__all__ = [
    "TOPIC_CONFIGS",
    "AppendResult",
    "ConfigDef",
    "ConfigType",
    "LogConfig",
    "LogManager",
    "PartitionLog",
    "Topic",
    "validate_topic_name",
]
