"""Records the reader can decode but Postgres cannot hold (lone UTF-16 surrogates, NUL) are dead-lettered one by
one at the log writer; the good records of the same batch are still appended."""

from __future__ import annotations

import json
from pathlib import Path

from ops.ingest import ingest
from tests.integration.test_api_rows import db


def record(event_id: str, **extra: object) -> dict[str, object]:
    return {
        "eventVersion": "1.08",
        "eventID": event_id,
        "eventTime": "2024-05-01T00:00:00Z",
        "eventSource": "ec2.amazonaws.com",
        "eventName": "CreateTags",
        "awsRegion": "us-east-1",
        "recipientAccountId": "111122223333",
        "readOnly": False,
        **extra,
    }


async def test_unstorable_records_are_dead_lettered_and_the_rest_logged(database_url: str, tmp_path: Path) -> None:
    good = [record("good-1"), record("good-2", userAgent=r"C:\u0000 is a literal backslash-u, not NUL")]
    body = json.dumps({"Records": [*good, record("lone-surrogate"), record("nul-char")]})
    # json.dumps escapes these, so the file is valid JSON and decodes to strings Postgres cannot take
    body = body.replace('"eventID": "lone-surrogate"', '"eventID": "lone-surrogate", "userAgent": "x\\ud83e y"')
    body = body.replace('"eventID": "nul-char"', '"eventID": "nul-char", "userAgent": "a\\u0000b"')
    path = tmp_path / "mixed.json"
    path.write_text(body)

    async with db(database_url) as conn:
        report = await ingest(conn, [path], tenant="acme")
        logged = await conn.fetch("SELECT event_id, record->>'userAgent' AS ua FROM log ORDER BY event_id")
        dead = await conn.fetch("SELECT locator, reason FROM dead_letters ORDER BY locator")

    total = report.total()
    assert (total.read, total.logged, total.rejected) == (4, 2, 2)
    assert not report.ok
    assert [r["event_id"] for r in logged] == ["good-1", "good-2"]
    assert logged[1]["ua"] == r"C:\u0000 is a literal backslash-u, not NUL"
    assert [d["locator"] for d in dead] == ["lone-surrogate", "nul-char"]
    assert "surrogates not allowed" in dead[0]["reason"]
    assert "NUL character" in dead[1]["reason"]
