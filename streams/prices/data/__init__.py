"""The shipped price snapshots (data only; see ops/prices/build_snapshot.py)."""
