"""The tolerant, streaming CloudTrail reader.

`read_path` / `read_stream` / `read_bytes` find every CloudTrail record in whatever container it arrived in
(S3 delivery files gzipped or not, arrays, NDJSON, Firehose-concatenated objects, EventBridge envelopes,
lookup-events output, SIEM wrappers) and yield `RawRecord`, `Skipped` (digests, non-CloudTrail events, empty
inputs, S3 notifications) or `Rejected` (bad input, as a value). `to_log_entry` turns a RawRecord into the log
envelope, checking the fields the log depends on. Two fast paths give exactly the same results for the common
case: `plain_records` parses an ordinary delivery file whole, and `read_only_day` says which (account, day) a
read-only record is counted under without building its LogEntry.
"""

from schemas.cloudtrail.fields import infer_read_only, parse_event_time, read_only_day, to_log_entry
from schemas.cloudtrail.items import (
    DEFAULT_LIMITS,
    DIGEST,
    EMPTY,
    NON_CLOUDTRAIL,
    S3_NOTIFICATION,
    Item,
    Limits,
    RawRecord,
    Skipped,
)
from schemas.cloudtrail.reader import plain_records, read_bytes, read_path, read_stream
from schemas.events import Rejected

__all__ = [
    "DEFAULT_LIMITS",
    "DIGEST",
    "EMPTY",
    "NON_CLOUDTRAIL",
    "S3_NOTIFICATION",
    "Item",
    "Limits",
    "RawRecord",
    "Rejected",
    "Skipped",
    "infer_read_only",
    "parse_event_time",
    "plain_records",
    "read_bytes",
    "read_only_day",
    "read_path",
    "read_stream",
    "to_log_entry",
]
