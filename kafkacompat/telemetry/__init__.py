"""Client telemetry (KIP-714): subscriptions clients ask for, and the metrics they push."""
