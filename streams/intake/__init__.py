"""Intake: one received batch (HTTP push, an agent's batch) read, admitted, archived and appended durably.

    from streams.intake import receive_body, receive_records, Received
    got = await receive_body(pool, writer, archive, tenant, body, source="push:<key id>")
    got = await receive_records(pool, writer, archive, tenant, records, source="agent:<name>")
    got.as_json()  # read, logged, duplicate, read_only_counted, skipped, ignored_non_cloudtrail, rejected, archived

`writer` comes from streams.log.writer.open_log_writer; `archive` from streams.archive.open_archive (None: none).
Both return only once the batch is durable in the archive and the log, with the rejections dead-lettered.
"""

from streams.intake.batch import ReadBatch, read_body, read_records
from streams.intake.receive import Received, receive_body, receive_records

__all__ = ["ReadBatch", "Received", "read_body", "read_records", "receive_body", "receive_records"]
