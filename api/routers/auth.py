"""POST /v1/auth/login: username + password (+ tenant when ambiguous) -> a bearer token."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, status

from api.deps import AuthDep
from api.models import LoginRequest, TokenResponse

router = APIRouter(prefix="/v1/auth", tags=["auth"])


@router.post(
    "/login",
    response_model=TokenResponse,
    responses={401: {"description": "unknown user, wrong password, or a username that needs its tenant"}},
)
async def login(body: LoginRequest, auth: AuthDep) -> TokenResponse:
    principal = await auth.authenticate(body.username, body.password, body.tenant)
    if principal is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "invalid credentials", {"WWW-Authenticate": "Bearer"})
    token = auth.issue(principal)
    return TokenResponse(access_token=token.access_token, token_type=token.token_type, expires_in=token.expires_in)
