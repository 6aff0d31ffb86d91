"""Hostile OTLP requests that attack the receiver's memory, shared by tests and benchmarks."""

from __future__ import annotations

import functools
import time

from tests.unit.agents.payloads import metrics_request, sum_metric

FAT_ATTRIBUTES = 128
FAT_CHARS = 200
BOMB_ATTRIBUTES = 2_000_000


_MARK = b"@" * 12


@functools.cache
def _fat_template(points: int) -> bytes:
    now = time.time_ns()
    mark = _MARK.decode()
    keys = [f"k{j:03d}".ljust(FAT_CHARS, "k") for j in range(FAT_ATTRIBUTES)]
    series = [({key: f"{mark}-{i}-{j}".ljust(FAT_CHARS, "v") for j, key in enumerate(keys)},
               1, now - 10**9, now) for i in range(points)]
    request = metrics_request({"service.name": "fat"},
                              [sum_metric(f"fat.metric.{mark}", series)])
    return bytes(request.SerializeToString())


def fat_series_request(n: int, points: int = 70) -> bytes:
    """``points`` new series (request ``n`` of a flood) under a new metric, each of 128
    attributes whose keys and values are 200 characters (about 52 KB of attributes per
    series; 70 fit a 4 MiB body). Made from one template in milliseconds."""
    return _fat_template(points).replace(_MARK, b"%012d" % n)


def _length_delimited(field: int, payload: bytes) -> bytes:
    size = len(payload)
    varint = bytearray()
    while True:
        byte = size & 0x7F
        size >>= 7
        varint.append(byte | (0x80 if size else 0))
        if not size:
            break
    return bytes([field << 3 | 2]) + bytes(varint) + payload


def attribute_bomb_request(attributes: int = BOMB_ATTRIBUTES) -> bytes:
    """A metrics export whose resource holds ``attributes`` empty attributes (2 bytes each on
    the wire: 2 M of them in 4 MB), built on the wire because the library would take seconds."""
    resource = b"\x0a\x00" * attributes  # Resource.attributes (field 1), empty KeyValue
    now = time.time_ns()
    metric = sum_metric("bomb.metric", [({"k": "v"}, 1, now - 10**9, now)])
    scope = _length_delimited(2, bytes(metric.SerializeToString()))  # ScopeMetrics.metrics
    resource_metrics = _length_delimited(1, resource) + _length_delimited(2, scope)
    return _length_delimited(1, resource_metrics)  # ExportMetricsServiceRequest
