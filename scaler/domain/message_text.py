"""Queue message text → JSON object: the encodings producers really send, and no others.

Accepted (each one decodes to the same intent):

- UTF-8 JSON, with or without a UTF-8 byte-order mark (PowerShell and .NET write one);
- standard base64 (RFC 4648 §4, `+` and `/`) of that JSON: on one line, or wrapped at any width
  with LF or CRLF line breaks (coreutils `base64`, Python's `base64.encodebytes`, MIME), padded
  or unpadded. The decoded text may start with a byte-order mark too.

Everything else is refused with what was detected: UTF-16, base64url (`-` and `_`), a mix of
both alphabets, base64 of something that is not UTF-8 or not JSON, base64 encoded twice.

JSON and base64 cannot be confused: an intent is a JSON object, so its text starts with `{`
(after the optional BOM and whitespace), and `{` is outside both base64 alphabets. A JSON scalar
(`true`, `12`) is parsed as JSON, so it is refused as "not an object" rather than decoded.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from typing import Any

from scaler.domain.errors import InvalidInput, field_name
from scaler.domain.pools import json_type

# A storage queue message holds at most 64 KiB; anything larger did not come from a queue.
MAX_MESSAGE_BYTES = 64 * 1024

_BOM = "\ufeff"
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")
_JSON_START = ("{", "[", '"')
_JSON_SCALAR = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?|true|false|null")
# Line breaks a wrapping encoder puts between base64 lines (LF, CRLF).
_LINE_BREAKS = re.compile(r"\r?\n")
# Checked on the text without its trailing padding, except _EITHER (the first look).
_STANDARD = re.compile(r"[A-Za-z0-9+/]*")
_URL_SAFE = re.compile(r"[A-Za-z0-9_-]*")
_EITHER = re.compile(r"[A-Za-z0-9+/_=-]*")


def decode_message(body: bytes | str) -> dict[str, Any]:
    """Message text → JSON object, or `InvalidInput` saying what the text was taken for."""
    try:
        raw = body.encode("utf-8") if isinstance(body, str) else bytes(body)
    except UnicodeEncodeError as error:  # a str holding a lone surrogate
        raise InvalidInput(
            "", f"message is not UTF-8 text (bad character at {error.start})"
        ) from None
    if len(raw) > MAX_MESSAGE_BYTES:
        raise InvalidInput(
            "", f"message is {len(raw)} bytes; a queue message holds at most {MAX_MESSAGE_BYTES}"
        )
    text = _without_bom(_utf8(raw))
    if text and not _looks_like_json(text):
        decoded = _from_base64(text)
        if decoded is not None:
            return _json_object(decoded, "message is base64 of text that is not JSON")
    return _json_object(text, "message is not JSON")


def _looks_like_json(text: str) -> bool:
    return text.startswith(_JSON_START) or _JSON_SCALAR.fullmatch(text) is not None


def _utf8(raw: bytes, what: str = "message is not UTF-8 text") -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as error:
        hint = "; it starts with a UTF-16 byte-order mark" if raw.startswith(_UTF16_BOMS) else ""
        raise InvalidInput("", f"{what} (bad byte at {error.start}{hint})") from None


def _without_bom(text: str) -> str:
    """One leading UTF-8 byte-order mark is dropped; surrounding whitespace too."""
    text = text.strip()
    return text[1:].strip() if text.startswith(_BOM) else text


def _from_base64(text: str) -> str | None:
    """The text a base64 message encodes; None when the text is not base64 at all (so the JSON
    error describes it). Base64-looking text that cannot be used is refused here, naming why."""
    compact = _LINE_BREAKS.sub("", text)
    if not _EITHER.fullmatch(compact):
        return None  # characters outside every base64 alphabet: plain (bad) text
    data = compact.rstrip("=")
    if "=" in data:
        raise _neither("= inside the text; base64 only pads at the end")
    if not _STANDARD.fullmatch(data):
        if _URL_SAFE.fullmatch(data):
            raise InvalidInput(
                "",
                "message looks like base64url (it has - or _); "
                "use the standard base64 alphabet (+ and /)",
            )
        raise InvalidInput(
            "", "message mixes the standard (+ /) and URL-safe (- _) base64 alphabets"
        )
    if len(data) % 4 == 1:
        raise _neither(f"{len(data)} base64 characters cannot encode whole bytes; cut short?")
    padding = len(compact) - len(data)
    if padding not in (0, -len(data) % 4):
        raise _neither(f"{padding} = after {len(data)} characters is the wrong padding")
    decoded = _utf8(
        base64.b64decode(data + "=" * (-len(data) % 4)),
        "message is base64 of bytes that are not UTF-8 text",
    )
    decoded = _without_bom(decoded)
    if decoded and not _looks_like_json(decoded) and _is_base64_json(decoded):
        raise InvalidInput("", "message is base64 of base64 of JSON; encode the JSON once")
    return decoded


def _is_base64_json(text: str) -> bool:
    compact = _LINE_BREAKS.sub("", text)
    try:
        inner = base64.b64decode(compact, validate=True).decode("utf-8")
    except (binascii.Error, ValueError):  # UnicodeDecodeError is a ValueError
        return False
    return _without_bom(inner).startswith(_JSON_START)


def _neither(why: str) -> InvalidInput:
    return InvalidInput("", f"message is neither JSON nor base64 ({why})")


def _json_object(text: str, not_json: str) -> dict[str, Any]:
    try:
        value = json.loads(text, object_pairs_hook=_no_duplicate_keys, parse_constant=_no_constant)
    except json.JSONDecodeError as error:
        raise InvalidInput("", f"{not_json} ({error.msg} at position {error.pos})") from None
    except RecursionError:
        raise InvalidInput("", "message is not an intent (JSON nested too deeply)") from None
    except InvalidInput:  # from the hooks: duplicate keys, NaN
        raise
    except ValueError as error:  # e.g. an integer longer than Python's int_max_str_digits
        raise InvalidInput("", f"message is not an intent ({error})") from None
    if not isinstance(value, dict):
        raise InvalidInput("", f"an intent must be a JSON object, not {json_type(value)}")
    return value


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise InvalidInput(field_name(key), "appears twice in the same object")
        result[key] = value
    return result


def _no_constant(name: str) -> None:
    raise InvalidInput("", f"message is not JSON ({name} is not a JSON value)")
