"""Runners: read the log after a checkpoint, fold, write projections + checkpoint in one transaction."""
