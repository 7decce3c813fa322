"""Stage 1 - normalize: one log entry -> the cost events it started (pure). See pure.py."""
