"""How many messages a payload would parse into, counted on the wire before parsing (pure).

Parsing is where a request costs the most memory: an empty attribute is 2 bytes sent and
about 56 bytes parsed, so 4 MB of them (2 million) became 113 MB in the parser before any
cap on attributes could look at them. The count walks the protobuf wire format with the
message's descriptor, stepping over strings, numbers and unknown fields without reading
them, and stops as soon as it passes the limit; a payload too small to hold that many
messages (each takes at least 2 bytes) is not walked at all, nor one whose bytes that could
start a length-delimited field are few enough (counted in C). JSON is bounded by its
braces, brackets and commas, counted in C.
"""

from __future__ import annotations

from functools import cache
from typing import Any

_VARINT, _I64, _LEN, _SGROUP, _EGROUP, _I32 = 0, 1, 2, 3, 4, 5


@cache
def _children(descriptor: Any) -> dict[int, Any]:
    """Field number -> message descriptor, for the fields of ``descriptor`` that hold messages."""
    return {f.number: f.message_type for f in descriptor.fields if f.message_type is not None}


class _MalformedError(Exception):
    """The bytes are not protobuf: the real parser will say so."""


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise _MalformedError


def protobuf_messages_over(data: bytes, descriptor: Any, limit: int) -> bool:
    """Whether ``data`` holds more than ``limit`` messages of ``descriptor`` and the
    messages it contains; False for bytes that are not valid protobuf (left to the parser).

    >>> from opentelemetry.proto.common.v1.common_pb2 import KeyValueList
    >>> empty_attributes = b"\\x0a\\x00" * 1000
    >>> protobuf_messages_over(empty_attributes, KeyValueList.DESCRIPTOR, 999)
    True
    >>> protobuf_messages_over(empty_attributes, KeyValueList.DESCRIPTOR, 1000)
    False
    """
    if len(data) // 2 <= limit or _length_tags(data) <= limit:
        return False
    try:
        return _walk(data, descriptor, limit)
    except (_MalformedError, IndexError):
        return False


def _length_tags(data: bytes) -> int:
    """An upper bound on length-delimited fields: bytes whose low 3 bits say so (in C)."""
    return len(data.translate(None, _NOT_LENGTH_TAGS))


_NOT_LENGTH_TAGS = bytes(b for b in range(256) if b & 7 != _LEN)


def _walk(data: bytes, descriptor: Any, limit: int) -> bool:
    count = 0
    stack: list[tuple[int, int, Any]] = []
    pos, end, children = 0, len(data), _children(descriptor)
    while True:
        while pos < end:
            tag = data[pos]
            pos += 1
            if tag >= 0x80:
                tag, pos = _varint(data, pos - 1)
            wire_type = tag & 7
            if wire_type == _LEN:
                size = data[pos]
                pos += 1
                if size >= 0x80:
                    size, pos = _varint(data, pos - 1)
                child = children.get(tag >> 3)
                if child is not None:
                    count += 1
                    if count > limit:
                        return True
                    if size:
                        stack.append((pos + size, end, children))
                        end = pos + size
                        children = _children(child)
                        continue
                pos += size
            elif wire_type == _VARINT:
                while data[pos] >= 0x80:
                    pos += 1
                pos += 1
            elif wire_type == _I64:
                pos += 8
            elif wire_type == _I32:
                pos += 4
            else:
                raise _MalformedError  # groups: not in OTLP
        if pos != end:
            raise _MalformedError
        if not stack:
            return False
        pos, end, children = stack.pop()


def json_values_over(data: bytes, limit: int) -> bool:
    """Whether ``data`` may hold more than ``limit`` JSON values (objects, arrays, strings,
    numbers, each about as costly once parsed as a protobuf message): an upper bound from its
    braces, brackets and commas, counted in C (those inside strings count too).

    >>> json_values_over(b'{"a": [{}, {}]}', 3), json_values_over(b'{"a": [{}, {}]}', 5)
    (True, False)
    """
    if len(data) // 2 <= limit:
        return False
    return data.count(b"{") + data.count(b"[") + data.count(b",") > limit
