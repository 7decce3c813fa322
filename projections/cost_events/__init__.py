"""Read model: every priced (or knowingly unpriced) cost event, one row each."""
