"""Cluster-wide behaviour: the controller, replication and the multi-broker runtime, and fault rules."""
