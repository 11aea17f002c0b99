"""The KIP-848 consumer group protocol: broker-side assignment, incremental reconciliation."""
