"""The encodings a queue message may arrive in: what is accepted, and what a refusal says."""

from __future__ import annotations

import base64
import json

import pytest

from scaler.domain import intents
from scaler.domain.errors import InvalidInput
from scaler.domain.message_text import MAX_MESSAGE_BYTES, decode_message

# Long enough that wrapping encoders break it over several lines.
DOCUMENT = {"id": "enc-1", "pools": {"userpool1": 3}, "reason": "nightly batch " * 12}
TEXT = json.dumps(DOCUMENT)
RAW = TEXT.encode()
B64 = base64.b64encode(RAW).decode()
BOM = b"\xef\xbb\xbf"


def test_the_old_import_path_still_works() -> None:
    assert intents.decode_message is decode_message
    assert intents.MAX_MESSAGE_BYTES == MAX_MESSAGE_BYTES == 64 * 1024


@pytest.mark.parametrize(
    "body",
    [
        TEXT,
        RAW,
        f"  \n{TEXT}\r\n",
        BOM + RAW,  # PowerShell, .NET
        "\ufeff" + TEXT,  # the same BOM, already decoded
        BOM + b"\n" + RAW,
        B64,
        B64.encode(),
        base64.encodebytes(RAW).decode(),  # Python: 76 columns, LF, trailing LF
        base64.encodebytes(RAW).decode().replace("\n", "\r\n"),  # MIME: CRLF
        "\n".join(B64[i : i + 64] for i in range(0, len(B64), 64)),  # another width
        B64.rstrip("="),  # unpadded
        base64.b64encode(BOM + RAW).decode(),  # the BOM inside the base64
        "\ufeff" + B64,
        f"\n{B64}\n",
    ],
    ids=[
        "json",
        "json-bytes",
        "json-whitespace",
        "utf8-bom",
        "utf8-bom-str",
        "utf8-bom-newline",
        "base64",
        "base64-bytes",
        "base64-wrapped-lf",
        "base64-wrapped-crlf",
        "base64-wrapped-64",
        "base64-unpadded",
        "base64-of-bom-json",
        "bom-then-base64",
        "base64-surrounded-by-newlines",
    ],
)
def test_every_accepted_encoding_gives_the_same_document(body: str | bytes) -> None:
    assert decode_message(body) == DOCUMENT


@pytest.mark.parametrize("length", range(1, 7))
def test_unpadded_base64_of_every_length_is_accepted(length: int) -> None:
    text = json.dumps({"p": "x" * length})
    assert decode_message(base64.b64encode(text.encode()).decode().rstrip("=")) == {
        "p": "x" * length
    }


def test_the_wrapped_form_coreutils_writes_is_accepted() -> None:
    wrapped = "\n".join(B64[i : i + 76] for i in range(0, len(B64), 76)) + "\n"
    assert wrapped.count("\n") > 1
    assert decode_message(wrapped) == DOCUMENT


def _urlsafe_json() -> str:
    # base64url differs from the standard alphabet only where + or / would appear.
    text = json.dumps({"pools": {"userpool1": 3}, "reason": "ÿÿÿ>>>???"})
    encoded = base64.urlsafe_b64encode(text.encode()).decode()
    assert "-" in encoded or "_" in encoded
    return encoded


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (
            _urlsafe_json(),
            "message looks like base64url (it has - or _); use the standard base64 alphabet (+ and /)",
        ),
        (
            _urlsafe_json().rstrip("="),
            "message looks like base64url (it has - or _); use the standard base64 alphabet (+ and /)",
        ),
        ("ab+c-d==", "message mixes the standard (+ /) and URL-safe (- _) base64 alphabets"),
        (
            base64.b64encode(B64.encode()).decode(),
            "message is base64 of base64 of JSON; encode the JSON once",
        ),
        (
            base64.b64encode(b"hello world").decode(),
            "message is base64 of text that is not JSON (Expecting value at position 0)",
        ),
        (
            base64.b64encode(b"\xff\xfe{}").decode(),
            "message is base64 of bytes that are not UTF-8 text (bad byte at 0; it starts with a UTF-16 byte-order mark)",
        ),
        (
            B64[:41],  # cut one character into a group of four
            "message is neither JSON nor base64 (41 base64 characters cannot encode whole bytes; cut short?)",
        ),
        (
            B64[:8] + "=" + B64[8:],
            "message is neither JSON nor base64 (= inside the text; base64 only pads at the end)",
        ),
        (
            "eyJh===",
            "message is neither JSON nor base64 (3 = after 4 characters is the wrong padding)",
        ),
        (
            TEXT.encode("utf-16"),
            "message is not UTF-8 text (bad byte at 0; it starts with a UTF-16 byte-order mark)",
        ),
        (
            BOM + BOM + RAW,
            "message is not JSON (Unexpected UTF-8 BOM (decode using utf-8-sig) at position 0)",
        ),
        ("not json", "message is not JSON (Expecting value at position 0)"),
        ("", "message is not JSON (Expecting value at position 0)"),
        ("\ufeff", "message is not JSON (Expecting value at position 0)"),
        # JSON scalars are JSON, never taken for base64 ("true" and "1234" are valid base64).
        ("true", "an intent must be a JSON object, not a boolean"),
        ("1234", "an intent must be a JSON object, not the number 1234"),
        (B64[:20] + " " + B64[20:], "message is not JSON (Expecting value at position 0)"),
    ],
    ids=[
        "base64url",
        "base64url-unpadded",
        "mixed-alphabets",
        "double-base64",
        "base64-of-text",
        "base64-of-utf16",
        "truncated-base64",
        "padding-inside",
        "too-much-padding",
        "utf16",
        "two-boms",
        "plain-text",
        "empty",
        "only-a-bom",
        "json-true",
        "json-number",
        "base64-with-a-space",
    ],
)
def test_refusals_say_what_was_detected(body: str | bytes, error: str) -> None:
    with pytest.raises(InvalidInput) as raised:
        decode_message(body)
    assert str(raised.value) == error


def test_json_is_never_taken_for_base64() -> None:
    # Every JSON object starts with "{", outside both base64 alphabets, even after a BOM.
    for body in ('{"pools": {"abcd": 1}}', '\ufeff  {"pools": {"abcd": 1}}'):
        assert decode_message(body) == {"pools": {"abcd": 1}}
    with pytest.raises(InvalidInput, match=r"^message is not JSON \(Expecting"):
        decode_message('{"pools": ')


def test_the_size_limit_counts_the_message_as_it_arrives() -> None:
    assert decode_message(BOM + RAW)  # the BOM counts, but is far from the limit
    padded = json.dumps({"pools": {"a": 1}, "reason": "x" * (MAX_MESSAGE_BYTES - 40)})
    body = BOM + padded.encode().ljust(MAX_MESSAGE_BYTES - len(BOM), b" ")
    assert len(body) == MAX_MESSAGE_BYTES
    assert decode_message(body)["pools"] == {"a": 1}
    with pytest.raises(InvalidInput, match="holds at most 65536"):
        decode_message(body + b" ")
    wrapped = base64.encodebytes(padded.encode())
    assert len(wrapped) > MAX_MESSAGE_BYTES
    with pytest.raises(InvalidInput, match="holds at most 65536"):
        decode_message(wrapped)
