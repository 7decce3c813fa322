"""Floor: the same delivery files only gunzipped and parsed - no pipeline can read them faster than this.

Measured in a child pinned to the same single core as the ingest, so the ratio compares like with like.
`python -m ops.bench.floor FILELIST` prints `records seconds` for stdlib json (the floor) and orjson (for scale).
"""

from __future__ import annotations

import gzip
import json
import sys
import time
from pathlib import Path

import orjson


def parse_all(files: list[Path], loads: object) -> tuple[int, float]:
    began = time.perf_counter()
    records = 0
    for path in files:
        records += len(loads(gzip.decompress(path.read_bytes()))["Records"])  # type: ignore[operator]
    return records, time.perf_counter() - began


def main(argv: list[str]) -> int:
    files = [Path(line) for line in Path(argv[0]).read_text(encoding="utf-8").splitlines() if line]
    for name, loads in (("json", json.loads), ("orjson", orjson.loads)):
        records, seconds = parse_all(files, loads)
        print(name, records, f"{seconds:.4f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
