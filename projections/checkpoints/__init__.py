"""Read model: runner positions, written in the same transaction as the rows they cover."""
