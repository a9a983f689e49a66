"""After a 401 the gateway's credential asks for a new token once, whatever the credential."""

from __future__ import annotations

import json
from typing import Any

import pytest
from azure.core.credentials import AccessToken
from azure.identity import CredentialUnavailableError

from scaler.adapters.aks import RenewableCredential


class Recording:
    """A credential that records the claims it was asked for."""

    def __init__(self, refuses_claims: bool = False) -> None:
        self.calls: list[dict[str, Any]] = []
        self.refuses_claims = refuses_claims

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        self.calls.append(kwargs)
        if kwargs.get("claims") and self.refuses_claims:  # like AzureCliCredential
            raise CredentialUnavailableError("This credential doesn't support claims challenges")
        return AccessToken(f"token-{len(self.calls)}", 2_000_000_000)


def test_tokens_pass_through_until_one_is_refused() -> None:
    inner = Recording()
    credential = RenewableCredential(inner)  # type: ignore[arg-type]
    assert credential.get_token("scope").token == "token-1"
    assert inner.calls == [{}]


def test_after_renew_the_next_request_is_a_claims_challenge_then_plain_again() -> None:
    inner = Recording()
    credential = RenewableCredential(inner)  # type: ignore[arg-type]
    credential.renew()
    credential.get_token("scope")
    credential.get_token("scope")
    challenge, plain = inner.calls
    nbf = json.loads(challenge["claims"])["access_token"]["nbf"]
    assert nbf["essential"] is True and int(nbf["value"]) > 1_700_000_000
    assert plain == {}


def test_a_credential_without_claims_support_gets_a_plain_request() -> None:
    inner = Recording(refuses_claims=True)
    credential = RenewableCredential(inner)  # type: ignore[arg-type]
    credential.renew()
    assert credential.get_token("scope").token == "token-2"
    assert [bool(call.get("claims")) for call in inner.calls] == [True, False]


def test_a_failed_renewal_is_tried_again_next_time() -> None:
    class Down(Recording):
        def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
            self.calls.append(kwargs)
            raise OSError("identity endpoint unreachable")

    inner = Down()
    credential = RenewableCredential(inner)  # type: ignore[arg-type]
    credential.renew()
    for _ in range(2):
        with pytest.raises(OSError):
            credential.get_token("scope")
    assert all(call.get("claims") for call in inner.calls)


def test_claims_from_the_caller_are_passed_on_unchanged() -> None:
    inner = Recording()
    credential = RenewableCredential(inner)  # type: ignore[arg-type]
    credential.renew()
    credential.get_token("scope", claims='{"access_token":{"xms_cc":{"values":["cp1"]}}}')
    assert inner.calls[0]["claims"] == '{"access_token":{"xms_cc":{"values":["cp1"]}}}'
