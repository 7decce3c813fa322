"""The append-only log: records in, positions out. `postgres` is the one-box backend (Kafka comes later)."""
