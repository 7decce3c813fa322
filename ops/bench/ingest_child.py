"""Child process for the ingest benchmark: ingest the files named in FILELIST, in that order, then report.

    python -m ops.bench.ingest_child DATABASE_URL FILELIST

Prints one JSON line: records read, logged, read-only counted, rejected, files, seconds (inside the child).
"""

from __future__ import annotations

import asyncio
import io
import json
import sys
import time
from pathlib import Path


async def _main(url: str, files: list[Path]) -> dict[str, float]:
    from ops.ingest import ingest
    from projections.db import connect

    conn = await connect(url)
    began = time.perf_counter()
    try:
        report = await ingest(conn, files, progress=False, err=io.StringIO())
    finally:
        await conn.close()
    total = report.total()
    return {
        "files": len(report.files),
        "read": total.read,
        "logged": total.logged,
        "read_only_counted": total.read_only_counted,
        "rejected": total.rejected,
        "seconds": time.perf_counter() - began,
    }


def main(argv: list[str]) -> int:
    files = [Path(line) for line in Path(argv[1]).read_text(encoding="utf-8").splitlines() if line]
    print(json.dumps(asyncio.run(_main(argv[0], files))), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
