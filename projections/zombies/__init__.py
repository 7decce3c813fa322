"""The zombies read model: one row per zombie (folded from zombie log entries) and one per scan run."""
