"""Stage 2 - score: Welford + z + novelty against the baseline before folding the event in (pure)."""
