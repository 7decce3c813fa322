"""Benchmarks (`python -m ops.bench`, `make bench`): floor, ingest + fold, feed latency, list API latency."""
