"""Stage zombies: resources that bill but do nothing, found by a daily read-only scan.

pure.py decides from API responses already fetched (no I/O, no clock); scan.py fetches them with boto3.
"""
