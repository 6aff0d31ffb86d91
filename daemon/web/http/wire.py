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

from daemon.web.http.wire_scan import json_values_over, protobuf_messages_over

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
    daemon.web.http.wire.PayloadError: unsupported_content_type
    """
    media = (content_type or "").split(";", 1)[0].strip().lower()
    found = _CONTENT_TYPES.get(media)
    if found is None:
        raise PayloadError(415, "unsupported_content_type")
    return found


# Anything may inflate to this much; past it, at most MAX_INFLATE_RATIO times what was sent.
INFLATE_FLOOR_BYTES = 1 << 20
MAX_INFLATE_RATIO = 100
# A gzip body may hold several members (RFC 1952 2.2); each costs a new inflater, so a body
# of 200,000 empty members would hold the event loop for half a second: past this, 400.
MAX_GZIP_MEMBERS = 256


class Inflater:
    """Streaming gzip/deflate/identity decoding with a cap, fed as the body arrives.

    The cap is ``max_bytes`` and, past ``INFLATE_FLOOR_BYTES``, ``MAX_INFLATE_RATIO`` times
    the compressed bytes seen so far: real OTLP payloads compress 5-30x, a bomb of empty
    messages 1000x, so a bomb is refused after inflating a little, not 16 MiB.

    gzip framing follows RFC 1952: members follow one another until the body ends (up to
    ``MAX_GZIP_MEMBERS``), and anything after the last member that is not one (trailing
    garbage, zero padding) is a 400. A deflate (zlib) stream is one stream: bytes after it
    are a 400 too.

    >>> import gzip
    >>> i = Inflater("gzip", 10); i.feed(gzip.compress(b"abc")); i.finish()
    b'abc'
    >>> i = Inflater("gzip", 10); i.feed(gzip.compress(b"ab") + gzip.compress(b"c")); i.finish()
    b'abc'
    >>> i = Inflater("gzip", 10); i.feed(gzip.compress(b"abc") + b"junk"); i.finish()
    Traceback (most recent call last):
    ...
    daemon.web.http.wire.PayloadError: bad_compression
    """

    def __init__(self, content_encoding: str | None, max_bytes: int) -> None:
        name = (content_encoding or "identity").strip().lower()
        self._wbits: int | None
        if name == "identity":
            self._wbits = None
        elif name in ("gzip", "x-gzip"):
            self._wbits = 16 + zlib.MAX_WBITS
        elif name == "deflate":
            self._wbits = zlib.MAX_WBITS
        else:
            raise PayloadError(415, "unsupported_content_encoding")
        self._inflater = None if self._wbits is None else zlib.decompressobj(self._wbits)
        self.members = 1
        self.max_bytes = max_bytes
        self.received = 0
        self.size = 0
        self._parts: list[bytes] = []

    def _cap(self) -> int:
        if self._inflater is None:
            return self.max_bytes
        return min(self.max_bytes, max(INFLATE_FLOOR_BYTES, self.received * MAX_INFLATE_RATIO))

    def feed(self, data: bytes) -> None:
        """Take the next piece of the body; PayloadError 413 as soon as the cap is passed."""
        self.received += len(data)
        if self._inflater is None:
            self._keep(data)
            return
        while data:
            if self._inflater.eof:
                self._next_member()
            try:
                # max_length bounds what one bomb can claim: one byte past the cap is proof.
                piece = self._inflater.decompress(data, self._cap() - self.size + 1)
            except zlib.error as exc:
                raise PayloadError(400, "bad_compression") from exc
            self._keep(piece)
            data = self._inflater.unused_data if self._inflater.eof else (
                self._inflater.unconsumed_tail)

    def _next_member(self) -> None:
        """Bytes after a finished stream: the next gzip member, or a 400."""
        if self._wbits != 16 + zlib.MAX_WBITS:
            raise PayloadError(400, "bad_compression")
        self.members += 1
        if self.members > MAX_GZIP_MEMBERS:
            raise PayloadError(400, "too_many_gzip_members")
        self._inflater = zlib.decompressobj(self._wbits)

    def _keep(self, piece: bytes) -> None:
        self.size += len(piece)
        if self.size > self._cap():
            raise PayloadError(413, "decompressed_too_large")
        if piece:
            self._parts.append(piece)

    def finish(self) -> bytes:
        """The whole payload; 400 if a compressed stream (or member) ended early."""
        if self._inflater is not None and not self._inflater.eof:
            raise PayloadError(400, "bad_compression")
        payload = b"".join(self._parts)
        self._parts = []
        return payload


def decompress(body: bytes, content_encoding: str | None, max_bytes: int) -> bytes:
    """Undo gzip/deflate in one go, refusing (413) anything that would inflate past the cap.

    >>> import gzip
    >>> decompress(gzip.compress(b"abc"), "gzip", 10)
    b'abc'
    >>> decompress(gzip.compress(b"a" * 100), "gzip", 10)
    Traceback (most recent call last):
    ...
    daemon.web.http.wire.PayloadError: decompressed_too_large
    """
    inflater = Inflater(content_encoding, max_bytes)
    inflater.feed(body)
    return inflater.finish()


def parse(body: bytes, encoding: WireEncoding, message_type: type[M],
          max_messages: int | None = None) -> M:
    """Decode an Export*ServiceRequest from protobuf or OTLP JSON, or refuse it with 400;
    413 before parsing if it would parse into more than ``max_messages`` messages
    (``wire_scan.py``)."""
    if max_messages is not None and (
            json_values_over(body, max_messages) if encoding == "json"
            else protobuf_messages_over(body, message_type.DESCRIPTOR, max_messages)):
        raise PayloadError(413, "too_many_messages")
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
