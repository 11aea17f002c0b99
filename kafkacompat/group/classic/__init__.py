"""The classic group protocol: JoinGroup/SyncGroup barriers with client-side assignment."""
