"""KIP-932 share groups: membership (group.py), share-partition state (partition.py), durability (store.py)."""
