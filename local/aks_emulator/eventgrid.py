"""An Event Grid topic's publish API, so the app's real `azure-eventgrid` path runs locally.

    POST /api/events?api-version=2018-01-01
    Content-Type: application/cloudevents-batch+json; charset=utf-8
    Authorization: Bearer <token from /msi/token for resource https://eventgrid.azure.net>

Like a topic with local auth disabled: `aeg-sas-key` / `aeg-sas-token` are refused, and only a
bearer token this emulator issued *for Event Grid* is accepted (an ARM token is a 401). The body
must be a JSON array of CloudEvents 1.0 (`id`, `source`, `type`, `specversion` "1.0"); a batch
is accepted whole or refused whole (400), as Event Grid does. Accepted events are kept, in
order, for `GET /_emulator/events`.
"""

from __future__ import annotations

import json
from typing import Any

EVENTGRID_PATH = "/api/events"
EVENTGRID_AUDIENCE = "https://eventgrid.azure.net"
# Event Grid's limits: 1 MB per event, 1 MB per batch (basic tier).
MAX_BATCH_BYTES = 1024 * 1024
_REQUIRED = ("id", "source", "type", "specversion")


class PublishRefused(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.body = {"error": {"code": code, "message": message}}


def check_publish(
    headers: Any, raw: bytes, audience: str | None, query: dict[str, list[str]]
) -> list[dict[str, Any]]:
    """The CloudEvents of a publish request, or PublishRefused saying why not."""
    if headers.get("aeg-sas-key") or headers.get("aeg-sas-token"):
        raise PublishRefused(
            401, "Unauthorized", "Local authentication is disabled on this topic: use Entra."
        )
    if audience is None:
        raise PublishRefused(401, "Unauthorized", "The bearer token is missing or invalid.")
    if audience != EVENTGRID_AUDIENCE:
        raise PublishRefused(
            401,
            "Unauthorized",
            f"The token's audience is {audience!r}, not {EVENTGRID_AUDIENCE!r}.",
        )
    if not (query.get("api-version") or [""])[0]:
        raise PublishRefused(400, "BadRequest", "The api-version query parameter is required.")
    content_type = (headers.get("Content-Type") or "").lower()
    if not content_type.startswith("application/cloudevents-batch+json"):
        raise PublishRefused(
            400,
            "BadRequest",
            f"Content-Type {content_type!r}: this topic takes the CloudEvents 1.0 schema "
            "(application/cloudevents-batch+json).",
        )
    if len(raw) > MAX_BATCH_BYTES:
        raise PublishRefused(413, "RequestEntityTooLarge", "The batch is larger than 1 MB.")
    try:
        batch = json.loads(raw)
    except ValueError:
        raise PublishRefused(400, "BadRequest", "The body is not JSON.") from None
    if not isinstance(batch, list) or not batch:
        raise PublishRefused(400, "BadRequest", "The body must be a non-empty array of events.")
    for index, event in enumerate(batch):
        if not isinstance(event, dict):
            raise PublishRefused(400, "BadRequest", f"Event {index} is not an object.")
        missing = [name for name in _REQUIRED if not event.get(name)]
        if missing:
            raise PublishRefused(400, "BadRequest", f"Event {index} lacks {', '.join(missing)}.")
        if event["specversion"] != "1.0":
            raise PublishRefused(400, "BadRequest", f"Event {index}: specversion must be 1.0.")
    return batch
