"""What the tests know about the reference specs in ../shared/kafka-message-specs (Kafka's 4.0 line)."""

# APIs whose served versions Kafka made final after the reference specs' 4.0 development line:
# KIP-932's share-group APIs (v1 of the four Kafka 4.0 shipped as unstable v0, and three APIs Kafka
# 4.1 added). Their wire facts come from the KIP and client sources; the golden frames librdkafka
# sent (compat_tests/test_share_golden.py) check them instead.
LATER_THAN_REFERENCE = frozenset({
    "ShareGroupHeartbeat", "ShareGroupDescribe", "ShareFetch", "ShareAcknowledge",
    "DescribeShareGroupOffsets", "AlterShareGroupOffsets", "DeleteShareGroupOffsets",
})

# Versions Kafka added after the reference's line whose body is the reference's newest version's
# (Kafka: "Version 12 is the same as version 11", KIP-890 transactions v2): the reference's fields,
# all open-ended, describe them too. {API name: the newest version we serve}.
SAME_BODY_LATER_VERSIONS = {"Produce": 12, "TxnOffsetCommit": 5}
# APIs the reference holds whose newer versions Kafka made final after it: the newest version the
# reference has, per API. Versions above it come from the KIP and client sources (ConsumerGroupDescribe
# v1, KIP-1099's member_type, from franz-go's generate/definitions), and the reference's are compared.
NEWER_THAN_REFERENCE = {"ConsumerGroupDescribe": 0}
