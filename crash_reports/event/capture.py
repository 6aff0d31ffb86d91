"""Hand a built report to sentry-sdk, which turns it into an envelope for the spool."""

from __future__ import annotations

from typing import TYPE_CHECKING

import sentry_sdk

if TYPE_CHECKING:
    from sentry_sdk._types import Event

from crash_reports.event.report import BuiltReport


def capture_report(client: sentry_sdk.Client, report: BuiltReport) -> str | None:
    """Capture the report through ``client`` (whose transport is the spool); return its id."""
    scope = sentry_sdk.Scope(client=client)
    for key, value in report.tags.items():
        scope.set_tag(key, value)
    for name, context in report.contexts.items():
        scope.set_context(name, context)
    scope.fingerprint = list(report.fingerprint)
    for attachment in report.attachments:
        scope.add_attachment(
            bytes=attachment.data,
            filename=attachment.filename,
            content_type=attachment.content_type,
        )
    event: Event = dict(report.event)  # type: ignore[assignment]
    return client.capture_event(event, scope=scope)
