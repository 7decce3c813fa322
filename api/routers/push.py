"""POST /v1/ingest/cloudtrail: HTTP push of CloudTrail (EventBridge targets, scripts), with a per-tenant API key.

Not a JWT route: senders are machines holding a key from `dd0c-cost accounts apikey create`, sent as
`Authorization: Bearer dd0c_...` or `X-Api-Key: dd0c_...`; the key's tenant is the tenant the records go to. The
body is read up to DD0C_PUSH_MAX_BYTES (413 beyond, before anything is read further or logged), and a gzipped
one is refused the same way if it inflates beyond DD0C_PUSH_MAX_INFLATED_BYTES. The answer comes
after the batch is durable in the raw archive and the log (streams/intake): 200 with the counts, 422 when nothing
in the body was CloudTrail, 401 for a missing or wrong key, 503 when the archive cannot be written.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Header, HTTPException, Request, status
from fastapi.responses import JSONResponse

from api.deps import PoolDep, SettingsDep
from api.push_metrics import PushMetrics
from ops.settings import Settings
from schemas.cloudtrail.containers import inflates_beyond
from streams.accounts import ApiKey, verify_api_key
from streams.archive import ArchiveError, RawArchive, open_archive
from streams.intake import receive_body
from streams.log.writer import LogWriter, open_log_writer

log = logging.getLogger("dd0c.api.push")

router = APIRouter(prefix="/v1/ingest", tags=["ingest"])

_UNAUTHORIZED = {"WWW-Authenticate": "Bearer"}


def _presented_key(authorization: str | None, x_api_key: str | None) -> str | None:
    if x_api_key:
        return x_api_key.strip()
    if authorization and authorization[:7].lower() == "bearer ":
        return authorization[7:].strip()
    return None


def _writer(request: Request, settings: Settings) -> LogWriter:
    """One log writer per app, opened on the first push (api/app.py closes it at shutdown)."""
    writer: LogWriter | None = getattr(request.app.state, "log_writer", None)
    if writer is None:
        writer = open_log_writer(request.app.state.pool, settings)
        request.app.state.log_writer = writer
    return writer


def _archive(request: Request, settings: Settings) -> RawArchive:
    archive: RawArchive | None = getattr(request.app.state, "raw_archive", None)
    if archive is None:
        archive = open_archive(settings)
        request.app.state.raw_archive = archive
    return archive


async def _body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, f"body over {limit} bytes (DD0C_PUSH_MAX_BYTES)")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:  # chunked or lying Content-Length: stop reading here
            raise HTTPException(
                status.HTTP_413_CONTENT_TOO_LARGE, f"body over {limit} bytes (DD0C_PUSH_MAX_BYTES)"
            )
        chunks.append(chunk)
    return b"".join(chunks)


@router.post(
    "/cloudtrail",
    summary="Push CloudTrail: a log file (gzipped or not), one record, an EventBridge event, or a batch",
    responses={
        200: {"description": "durably logged: counts of logged, duplicate, skipped and rejected records"},
        401: {"description": "missing or wrong API key; nothing logged"},
        413: {"description": "body over DD0C_PUSH_MAX_BYTES, or gzip inflating beyond DD0C_PUSH_MAX_INFLATED_BYTES; "
                              "nothing logged"},
        422: {"description": "nothing in the body was CloudTrail (the reasons name the problem)"},
        503: {"description": "the raw archive could not be written; nothing logged, retry"},
    },
    openapi_extra={"requestBody": {"content": {"application/json": {}, "application/gzip": {}}, "required": True}},
)
async def push_cloudtrail(
    request: Request,
    pool: PoolDep,
    settings: SettingsDep,
    authorization: Annotated[str | None, Header()] = None,
    x_api_key: Annotated[str | None, Header()] = None,
) -> JSONResponse:
    metrics: PushMetrics = request.app.state.push_metrics
    presented = _presented_key(authorization, x_api_key)
    key: ApiKey | None = await verify_api_key(pool, presented) if presented else None
    if key is None:
        log.warning("push refused: %s API key", "no" if presented is None else "invalid")
        metrics.refused("unauthorized")
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "missing or invalid API key", _UNAUTHORIZED)
    try:
        body = await _body(request, settings.push_max_bytes)
        if inflates_beyond(body, settings.push_max_inflated_bytes):
            raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE,
                                f"body inflates beyond {settings.push_max_inflated_bytes} bytes "
                                "(DD0C_PUSH_MAX_INFLATED_BYTES): send it in smaller parts")
    except HTTPException:
        metrics.refused("too_large")
        raise
    received_at = datetime.now(UTC)
    source = f"push:{key.key_id}:{received_at:%Y%m%dT%H%M%S.%fZ}"
    try:
        got = await receive_body(
            pool, _writer(request, settings), _archive(request, settings), key.tenant, body,
            source=source, received_at=received_at,
        )
    except ArchiveError as exc:
        log.error("push from key %s not logged: %s", key.key_id, exc)
        metrics.refused("archive_unavailable")
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, f"raw archive unavailable: {exc}") from None
    metrics.received(got, len(body))
    doc: dict[str, Any] = got.as_json()
    if not got.usable:
        reasons = "; ".join(r["reason"] for r in doc["rejected"])
        reasons = reasons or ("empty body" if not body.strip() else "no records in it")
        return JSONResponse({"detail": f"no CloudTrail record in the body: {reasons}", **doc}, status_code=422)
    return JSONResponse(doc)
