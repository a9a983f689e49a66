"""Managed-identity tokens (App Service protocol) and their check on ARM requests."""

from __future__ import annotations

import hmac
import secrets
from typing import Any

TOKEN_LIFETIME_SECONDS = 8 * 3600
SYSTEM_ASSIGNED = "system-assigned"  # the principal of a token requested without client_id


class TokenIssuer:
    """Issues opaque random bearer tokens and remembers them until they expire.

    Tokens survive `reset` on purpose: the app under test caches its token, so a reset between
    tests must not turn every later ARM call into a 401.
    """

    def __init__(self, identity_header: str, lifetime: int = TOKEN_LIFETIME_SECONDS) -> None:
        self.identity_header = identity_header
        self.lifetime = lifetime
        # token -> (expires_on, principal); the principal is what Resource Manager throttles by.
        self._tokens: dict[str, tuple[float, str]] = {}
        # token -> the resource (audience) it was issued for: Event Grid takes only its own.
        self._audiences: dict[str, str] = {}

    def header_ok(self, value: str | None) -> bool:
        return value is not None and hmac.compare_digest(value, self.identity_header)

    def issue(self, resource: str, client_id: str | None, now: float) -> dict[str, Any]:
        token = secrets.token_urlsafe(32)
        expires_on = int(now) + self.lifetime
        self._tokens[token] = (expires_on, client_id or SYSTEM_ASSIGNED)
        self._audiences[token] = resource.rstrip("/")
        answer: dict[str, Any] = {
            "access_token": token,
            "expires_on": str(expires_on),
            "resource": resource,
            "token_type": "Bearer",
        }
        if client_id:
            answer["client_id"] = client_id
        return answer

    def valid(self, authorization: str | None, now: float) -> bool:
        return self.principal(authorization, now) is not None

    def principal(self, authorization: str | None, now: float) -> str | None:
        """Who a valid bearer token was issued to (its client id); None for an invalid one."""
        if not authorization:
            return None
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token:
            return None
        entry = self._tokens.get(token.strip())
        if entry is None or now >= entry[0]:
            return None
        return entry[1]

    def audience(self, authorization: str | None, now: float) -> str | None:
        """The resource a valid bearer token was issued for; None for an invalid one."""
        if self.principal(authorization, now) is None:
            return None
        assert authorization is not None
        return self._audiences.get(authorization.partition(" ")[2].strip())
