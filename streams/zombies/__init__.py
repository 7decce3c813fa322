"""Stage zombies: resources that bill but do nothing, found by a daily read-only scan.

pure.py, pure_compute.py and pure_targets.py decide from API responses already fetched (no I/O, no clock);
scan.py fetches them with boto3; events.py turns a scan into log entries (and back); fold.py folds those into
`zombies` rows; hunt.py wires one account's scan to the log.
"""
