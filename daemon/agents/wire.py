"""OTLP/HTTP bytes in and out: content types, decompression with a cap, protobuf and JSON."""

from __future__ import annotations

import base64
import json
import zlib
from typing import Any, Literal, TypeVar, cast

# google.protobuf and google.rpc ship no type stubs and pyproject lists no override for them.
from google.protobuf import json_format
from google.protobuf.message import DecodeError, Message
from google.rpc import status_pb2

WireEncoding = Literal["protobuf", "json"]
M = TypeVar("M", bound=Message)

_CONTENT_TYPES: dict[str, WireEncoding] = {
    "application/x-protobuf": "protobuf",
    "application/protobuf": "protobuf",
    "application/json": "json",
}
_ID_FIELDS = ("traceId", "spanId", "trace_id", "span_id")


class PayloadError(Exception):
    """A request telemetryd refuses, with the HTTP status that says why."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def encoding_of(content_type: str | None) -> WireEncoding:
    """Map a Content-Type header to an OTLP encoding, or refuse it with 415.

    >>> encoding_of("application/json; charset=utf-8")
    'json'
    >>> encoding_of("text/plain")
    Traceback (most recent call last):
    ...
    daemon.agents.wire.PayloadError: unsupported_content_type
    """
    media = (content_type or "").split(";", 1)[0].strip().lower()
    found = _CONTENT_TYPES.get(media)
    if found is None:
        raise PayloadError(415, "unsupported_content_type")
    return found


def decompress(body: bytes, content_encoding: str | None, max_bytes: int) -> bytes:
    """Undo gzip/deflate, refusing (413) anything that would inflate past ``max_bytes``.

    >>> import gzip
    >>> decompress(gzip.compress(b"abc"), "gzip", 10)
    b'abc'
    >>> decompress(gzip.compress(b"a" * 100), "gzip", 10)
    Traceback (most recent call last):
    ...
    daemon.agents.wire.PayloadError: decompressed_too_large
    """
    name = (content_encoding or "identity").strip().lower()
    if name == "identity":
        return body
    if name == "gzip":
        wbits = 16 + zlib.MAX_WBITS
    elif name == "deflate":
        wbits = zlib.MAX_WBITS
    else:
        raise PayloadError(415, "unsupported_content_encoding")
    inflater = zlib.decompressobj(wbits)
    try:
        # max_length bounds the memory a bomb can claim: one byte past the cap is proof enough.
        out = inflater.decompress(body, max_bytes + 1)
    except zlib.error as exc:
        raise PayloadError(400, "bad_compression") from exc
    if len(out) > max_bytes or inflater.unconsumed_tail:
        raise PayloadError(413, "decompressed_too_large")
    if not inflater.eof:
        raise PayloadError(400, "bad_compression")
    return out


def parse(body: bytes, encoding: WireEncoding, message_type: type[M]) -> M:
    """Decode an Export*ServiceRequest from protobuf or OTLP JSON, or refuse it with 400."""
    message = message_type()
    if encoding == "protobuf":
        try:
            message.ParseFromString(body)
        except (DecodeError, RecursionError, ValueError) as exc:
            raise PayloadError(400, "bad_protobuf") from exc
        return cast(M, message)
    try:
        document = json.loads(body)
        if not isinstance(document, dict):
            raise PayloadError(400, "bad_json")
        json_format.ParseDict(_hex_ids_to_base64(document), message, ignore_unknown_fields=True)
    except (ValueError, RecursionError, json_format.ParseError, TypeError) as exc:
        raise PayloadError(400, "bad_json") from exc
    return cast(M, message)


def _hex_ids_to_base64(node: Any) -> Any:
    """OTLP JSON spells trace and span ids in hex where protobuf JSON expects base64."""
    if isinstance(node, dict):
        converted: dict[str, Any] = {}
        for key, value in node.items():
            if key in _ID_FIELDS and isinstance(value, str):
                try:
                    raw = bytes.fromhex(value)
                except ValueError as exc:
                    raise PayloadError(400, "bad_json") from exc
                converted[key] = base64.b64encode(raw).decode("ascii")
            else:
                converted[key] = _hex_ids_to_base64(value)
        return converted
    if isinstance(node, list):
        return [_hex_ids_to_base64(item) for item in node]
    return node


def serialize(message: Message, encoding: WireEncoding) -> bytes:
    """Encode a response message the way the request was encoded."""
    if encoding == "protobuf":
        return bytes(message.SerializeToString())
    return str(json_format.MessageToJson(message, indent=None)).encode("utf-8")


def status_body(code: int, reason: str, encoding: WireEncoding) -> bytes:
    """The ``google.rpc.Status`` body OTLP/HTTP sends with an error (reason only, no input).

    >>> status_body(400, "bad_protobuf", "json")
    b'{"code": 400, "message": "bad_protobuf"}'
    """
    return serialize(status_pb2.Status(code=code, message=reason), encoding)
