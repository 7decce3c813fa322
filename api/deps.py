"""Named dependencies: what a route needs is in its signature (`pool: PoolDep, principal: PrincipalDep`)."""

from __future__ import annotations

from typing import Annotated

import asyncpg
from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.auth import AuthError, AuthProvider, Principal
from api.feed import FeedHub
from ops.settings import Settings

_bearer = HTTPBearer(auto_error=False, description="a token from POST /v1/auth/login")


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_pool(request: Request) -> asyncpg.Pool:
    pool: asyncpg.Pool = request.app.state.pool
    return pool


def get_auth(request: Request) -> AuthProvider:
    auth: AuthProvider = request.app.state.auth
    return auth


def get_hub(request: Request) -> FeedHub:
    hub: FeedHub = request.app.state.hub
    return hub


AuthDep = Annotated[AuthProvider, Depends(get_auth)]


def get_principal(
    auth: AuthDep, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> Principal:
    if credentials is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "missing bearer token", {"WWW-Authenticate": "Bearer"})
    try:
        return auth.verify(credentials.credentials)
    except AuthError as exc:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, str(exc), {"WWW-Authenticate": "Bearer"}) from None


SettingsDep = Annotated[Settings, Depends(get_settings)]
PoolDep = Annotated[asyncpg.Pool, Depends(get_pool)]
HubDep = Annotated[FeedHub, Depends(get_hub)]
PrincipalDep = Annotated[Principal, Depends(get_principal)]
