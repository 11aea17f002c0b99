"""Cluster-wide behaviour; today the fault engine of one broker (faults.py)."""
