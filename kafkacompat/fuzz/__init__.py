"""Hostile-input tooling: spec-driven odd requests and a long fuzz campaign against a live broker.

``generator`` builds requests from the YAML specs alone (sans-I/O), so every
API key and version the broker advertises is covered, including ones added
later; ``campaign`` throws them, mutated and random frames over TCP and
checks every answer. ``kafkacompat fuzz`` runs a campaign.
"""
