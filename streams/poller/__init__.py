"""The S3 bucket poller: new CloudTrail objects in a trail's bucket -> the append-only log.

Flow, one step per module:

* `layout`    (pure) which prefixes to list: `[<prefix>/]AWSLogs/[<org-id>/]<account>/CloudTrail/<region>/YYYY/MM/DD/`
              for yesterday and today (UTC: day folders roll over at midnight UTC), or for a backfill's date range.
* `positions` (Postgres, migration 0008) the last key read per prefix: the next listing starts after it.
* `objects`   one object -> log entries, read with the shared CloudTrail reader (gzip decided by the bytes, big
              objects streamed), appended through `streams.log.writer` (either log backend).
* `poll`      wiring: list each prefix after its position, read each new object, then advance the position.

Exactly-once effect from at-least-once reading: an object's entries are durable in the log before its position
moves; a crash between the two re-reads the object and the log drops the copies (dedupe on tenant, account,
eventID; with the Kafka backend the workers dedupe). What the log does not deduplicate - read-only counts and
dead letters - is written in the transaction that moves the position, so it is never written twice.
"""
