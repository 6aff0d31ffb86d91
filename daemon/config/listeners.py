"""The [otlp] and [metrics] tables: listen addresses and the limits each listener enforces.

Part of the config parser (``parse.py``): pure, every default read from ``schema.py``, every
number checked against its ``RANGES`` entry, errors naming the key path.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from daemon.config.schema import Config, ListenSettings, MetricsSettings, OtlpSettings

if TYPE_CHECKING:
    from daemon.config.parse import _Table


def parse_listen_address(text: str) -> tuple[str, int] | None:
    """Split "host:port" or "[::1]:port"; None when it is not one.

    >>> parse_listen_address("127.0.0.1:4318")
    ('127.0.0.1', 4318)
    >>> parse_listen_address("[::1]:9464")
    ('::1', 9464)
    >>> parse_listen_address("nope") is None
    True
    """
    match = re.fullmatch(r"\[([0-9a-fA-F:]+)\]:(\d{1,5})|([^:\[\]]+):(\d{1,5})", text.strip())
    if not match:
        return None
    host = match.group(1) or match.group(3)
    port = int(match.group(2) or match.group(4))
    if not 0 <= port <= 65535:
        return None
    return host, port


def _parse_listen(table: _Table, default: ListenSettings) -> ListenSettings:
    enabled = table.get_bool("enabled", default.enabled)
    listen = table.get_str("listen")
    if listen is None:
        listen = f"{default.host}:{default.port}"
    parsed = parse_listen_address(listen)
    if parsed is None:
        example = f"{default.host}:{default.port}"
        raise table.error("listen", f'expected "host:port" like "{example}", got {listen!r}')
    return ListenSettings(enabled, parsed[0], parsed[1])


def parse_otlp(table: _Table) -> OtlpSettings:
    """The [otlp] table: receiver, wire limits, memory caps and the event store's retention."""
    d = OtlpSettings
    max_body = table.get_size("max_body_bytes", d.max_body_bytes, 0)
    max_inflated = table.get_size("max_decompressed_bytes", d.max_decompressed_bytes, 0)
    max_inflight = table.get_size("max_inflight_bytes", d.max_inflight_bytes, 0)
    settings = OtlpSettings(
        listen=_parse_listen(table, d.listen),
        max_body_bytes=max_body,
        queue_size=table.get_int("queue_size", d.queue_size),
        max_series_per_metric=table.get_int("max_series_per_metric", d.max_series_per_metric),
        retention_days=table.get_number("retention_days", d.retention_days),
        retention_bytes=table.get_size("retention_bytes", d.retention_bytes, 0),
        store_content=table.get_bool("store_content", d.store_content),
        max_decompressed_bytes=max_inflated,
        max_inflight_bytes=max_inflight,
        max_header_bytes=table.get_size("max_header_bytes", d.max_header_bytes, 0),
        max_items_per_request=table.get_int("max_items_per_request", d.max_items_per_request),
        max_connections=table.get_int("max_connections", d.max_connections),
        read_timeout_seconds=table.get_duration("read_timeout", d.read_timeout_seconds),
        keepalive_timeout_seconds=table.get_duration("keepalive_timeout",
                                                     d.keepalive_timeout_seconds),
        decode_concurrency=table.get_int("decode_concurrency", d.decode_concurrency),
        max_queued_records=table.get_int("max_queued_records", d.max_queued_records),
        max_metrics=table.get_int("max_metrics", d.max_metrics),
        max_series=table.get_int("max_series", d.max_series),
        max_agents=table.get_int("max_agents", d.max_agents),
        max_models=table.get_int("max_models", d.max_models),
        max_tools=table.get_int("max_tools", d.max_tools),
        max_sessions=table.get_int("max_sessions", d.max_sessions),
        series_idle_seconds=table.get_duration("series_idle", d.series_idle_seconds),
        retention_check_seconds=table.get_duration("retention_check_interval",
                                                   d.retention_check_seconds),
        max_attributes=table.get_int("max_attributes", d.max_attributes),
        max_attribute_key_bytes=table.get_size("max_attribute_key_bytes",
                                               d.max_attribute_key_bytes, 0),
        max_attribute_value_bytes=table.get_size("max_attribute_value_bytes",
                                                 d.max_attribute_value_bytes, 0),
        max_stored_string_bytes=table.get_size("max_stored_string_bytes",
                                               d.max_stored_string_bytes, 0),
        max_series_key_bytes=table.get_size("max_series_key_bytes", d.max_series_key_bytes, 0),
        max_series_bytes=table.get_size("max_series_bytes", d.max_series_bytes, 0),
        max_queued_bytes=table.get_size("max_queued_bytes", d.max_queued_bytes, 0),
        max_messages_per_request=table.get_int("max_messages_per_request",
                                               d.max_messages_per_request),
    )
    # A body that is not compressed counts against the inflated limit too, and one request
    # of the largest size must fit in the bytes held at once.
    if max_inflated < max_body:
        raise table.error("max_decompressed_bytes",
                          f"must be at least max_body_bytes ({max_inflated} < {max_body})")
    if max_inflight < max_inflated:
        raise table.error("max_inflight_bytes", f"must be at least max_decompressed_bytes "
                          f"({max_inflight} < {max_inflated})")
    table.reject_unknown()
    return settings


def parse_metrics(table: _Table) -> MetricsSettings:
    """The [metrics] table: the Prometheus listener and its wire limits."""
    d = Config.metrics
    listen = _parse_listen(table, d)
    settings = MetricsSettings(
        listen.enabled, listen.host, listen.port,
        max_connections=table.get_int("max_connections", d.max_connections),
        read_timeout_seconds=table.get_duration("read_timeout", d.read_timeout_seconds),
        keepalive_timeout_seconds=table.get_duration("keepalive_timeout",
                                                     d.keepalive_timeout_seconds),
        max_header_bytes=table.get_size("max_header_bytes", d.max_header_bytes, 0),
    )
    table.reject_unknown()
    return settings
