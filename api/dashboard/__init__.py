"""The dashboard: a static single-page app (plain HTML, CSS and JS; no build step, nothing loaded from the
internet). The API serves it at `/` (api/routers/dashboard.py); compose's `dashboard` service serves the same
files. It reads only the public API: POST /v1/auth/login, /v1/summary, /v1/accounts, /v1/anomalies,
/v1/resources and the websocket /v1/feed."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent
INDEX = ROOT / "index.html"
ASSETS = ROOT / "assets"
