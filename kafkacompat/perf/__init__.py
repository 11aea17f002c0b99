"""``kafkacompat perf``: throughput and latency of any Kafka broker, and a side-by-side comparison.

The load comes from librdkafka (confluent-kafka), so what is measured is what
a real client gets; the raw-socket probes (startup, big Metadata, idle
connections) use our own codec. Nothing here is imported by the broker.
"""
