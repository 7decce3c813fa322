"""Read model: the resources ledger - what runs now and what it burns per hour; closed rows kept for history."""
