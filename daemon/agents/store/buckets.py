"""Duration buckets of the request and tool histograms in ``/metrics`` (pure)."""

from __future__ import annotations

from daemon.stats.histogram import bound_label, bucket_index

# Upper bounds in seconds; reaching 120 s covers long generations and slow tools.
DURATION_BUCKETS_SECONDS: tuple[float, ...] = (
    0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0,
)
OVERFLOW_BUCKET = "+Inf"


def duration_bucket(seconds: float) -> str:
    """The bucket (its upper bound as text) a duration falls in.

    >>> duration_bucket(0.3), duration_bucket(120.0), duration_bucket(121.0)
    ('0.5', '120.0', '+Inf')
    """
    return bound_label(DURATION_BUCKETS_SECONDS, bucket_index(DURATION_BUCKETS_SECONDS, seconds))
