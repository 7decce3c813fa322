"""The raw archive: every batch received, compressed, in CloudTrail's own layout, so the log can be rebuilt.

API (stable; the poller, the agent's server and HTTP push use it):

    from streams.archive import open_archive, archive_entries, archive_entries_async, ArchiveError

    archive = open_archive(settings)            # DD0C_ARCHIVE_URL: unset -> <data_dir>/archive, path, s3://b/prefix
    files = archive_entries(archive, tenant, entries, received_at=now)      # sync; blocking I/O
    files = await archive_entries_async(archive, tenant, entries, received_at=now)
    # -> [ArchiveFile(key, account_id, region, records, data)], one per (account, region) of the batch; key =
    #    "<tenant>/AWSLogs/<account>/CloudTrail/<region>/YYYY/MM/DD/<account>_CloudTrail_<region>_<stamp>_<id>.json.gz"

The gRPC server keeps the documents an agent sends as they came instead (`gzip_member`, `member_files`,
`write_files_async`): same layout, one file per (account, region) of a batch, no record encoded again.

Write the archive before appending the batch to the log: a put returns once durable, so whatever is in the log is
in the archive. `dd0c-cost ingest <root>/<tenant> --tenant <tenant>` rebuilds the log from it
(dedup on eventID makes re-reading harmless). Failures raise ArchiveError (a Dd0cError) naming the file.
"""

from streams.archive.layout import (
    ArchiveError,
    ArchiveFile,
    build_files,
    file_key,
    group_files,
    gzip_member,
    member_files,
    records_member,
)
from streams.archive.store import (
    LocalArchive,
    RawArchive,
    S3Archive,
    archive_entries,
    archive_entries_async,
    open_archive,
    write_files,
    write_files_async,
)

__all__ = [
    "ArchiveError",
    "ArchiveFile",
    "LocalArchive",
    "RawArchive",
    "S3Archive",
    "archive_entries",
    "archive_entries_async",
    "build_files",
    "file_key",
    "group_files",
    "gzip_member",
    "member_files",
    "open_archive",
    "records_member",
    "write_files",
    "write_files_async",
]
