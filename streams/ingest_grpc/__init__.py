"""The agents' gRPC ingestion server: batches from `dd0c-cost-agent` in, durable log entries and Acks out.

* `batches.py` - pure: a received Batch -> log entries (per part, sorted), rejections and skips, read with the
  same CloudTrail reader as `dd0c-cost ingest`.
* `tokens.py` - per-tenant agent tokens, stored hashed (migration 0010), `dd0c-cost agent-token`.
* `server.py` - grpc.aio wiring: TLS / mutual TLS, token auth, claim + append + dead letters in one transaction,
  Ack after commit. `IngestServer(pool).start()/stop()` or `serve()`; `python -m streams.ingest_grpc` runs it alone.

Protocol: schemas/ingest.proto (regenerate with `python -m ops.proto`).
"""
