"""GET / (the dashboard page) and /assets/* (its CSS, JS and icon): static files from api/dashboard/.

The page holds no data: it signs in through POST /v1/auth/login and reads the same routes as any API client.
Its Content-Security-Policy allows scripts, styles and connections to this origin only, so nothing the page
shows can pull code or data from elsewhere (CloudTrail text such as actor names is attacker-controllable).
"""

from __future__ import annotations

import re

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles
from starlette.responses import Response
from starlette.types import Scope

from api.dashboard import ASSETS, INDEX

router = APIRouter(include_in_schema=False)

_HOST = re.compile(r"^[A-Za-z0-9.\-]+(:[0-9]{1,5})?$|^\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?$")


def content_security_policy(host: str | None) -> str:
    # 'self' covers ws:/wss: to the same host in current browsers; naming them keeps older ones working. A Host
    # header that is not a plain host[:port] gets no websocket source instead of being echoed into the header.
    sockets = f" ws://{host} wss://{host}" if host and _HOST.match(host) else ""
    return (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        f"connect-src 'self'{sockets}; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    )


@router.get("/")
async def dashboard(request: Request) -> FileResponse:
    return FileResponse(
        INDEX,
        media_type="text/html; charset=utf-8",
        headers={
            "Content-Security-Policy": content_security_policy(request.headers.get("host")),
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer",
            "Cache-Control": "no-cache",  # revalidate, so an upgrade shows its new page at once
        },
    )


class _Assets(StaticFiles):
    """StaticFiles (types, ETags, path traversal) with `no-cache`: a browser revalidates each file (a 304 when it is
    unchanged), so the page and its script never come from two different versions after an upgrade."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        response.headers["Cache-Control"] = "no-cache"
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response


def install(app: FastAPI) -> None:
    """The page at / and its files at /assets."""
    app.include_router(router)
    app.mount("/assets", _Assets(directory=ASSETS), name="dashboard-assets")
