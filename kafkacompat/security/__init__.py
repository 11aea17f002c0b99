"""Security: TLS contexts, SASL mechanisms, SCRAM credentials and connection principals."""
