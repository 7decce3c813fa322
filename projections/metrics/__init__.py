"""Read model: counters the folds keep (failed create attempts by errorCode, unpriced events, ...)."""
