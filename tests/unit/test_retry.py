"""The pure retry policy and the parsing of Sentry's rate-limit headers."""

from __future__ import annotations

import random

from hypothesis import given
from hypothesis import strategies as st

from crash_reports.delivery.retry import (
    RetryPolicy,
    limited_until,
    merge_rate_limits,
    parse_rate_limits,
    parse_retry_after,
)
from crash_reports.delivery.upload import Delivered, Reject, Retry, classify_response


@given(failures=st.integers(min_value=1, max_value=10_000), seed=st.integers())
def test_delay_is_within_half_and_full_step_and_never_above_the_cap(
    failures: int, seed: int
) -> None:
    """Every delay lies in [step/2, step] where step = min(cap, base*2^(n-1))."""
    policy = RetryPolicy(base_seconds=10, cap_seconds=3600)
    step = min(3600.0, 10 * 2.0 ** min(failures - 1, 60))
    delay = policy.delay(failures, random.Random(seed))
    assert step / 2 <= delay <= step
    assert delay <= 3600


def test_delay_grows_exponentially_until_capped() -> None:
    """The midpoint of the delay doubles per failure, then stays at the cap."""
    policy = RetryPolicy(base_seconds=1, cap_seconds=3600)

    def mean(n: int) -> float:
        rng = random.Random(7)
        return sum(policy.delay(n, rng) for _ in range(400)) / 400

    assert 1.8 < mean(2) / mean(1) < 2.2
    assert 1.8 < mean(6) / mean(5) < 2.2
    assert abs(mean(40) - mean(30)) < 100
    assert mean(40) > 2000


def test_jitter_spreads_clients_apart() -> None:
    """Two random sources give different delays for the same failure count."""
    policy = RetryPolicy()
    delays = {round(policy.delay(5, random.Random(seed)), 6) for seed in range(20)}
    assert len(delays) == 20


def test_server_retry_after_wins_over_a_shorter_backoff() -> None:
    """retry_at never comes before the server's Retry-After, but is capped."""
    policy = RetryPolicy(base_seconds=1, cap_seconds=600)
    assert policy.retry_at(1, 100.0, random.Random(1), 300.0) == 400.0
    assert policy.retry_at(1, 100.0, random.Random(1), 99_999.0) == 700.0


def test_retry_after_parsing_accepts_seconds_and_dates_and_rejects_junk() -> None:
    """Retry-After in seconds or as an HTTP date; junk and empty give None."""
    assert parse_retry_after("120", 0.0) == 120.0
    assert parse_retry_after("-5", 0.0) == 0.0
    assert parse_retry_after("Thu, 01 Jan 1970 00:02:00 GMT", 60.0) == 60.0
    assert parse_retry_after("", 0.0) is None
    assert parse_retry_after(None, 0.0) is None
    assert parse_retry_after("tomorrow-ish", 0.0) is None


def test_rate_limit_header_per_category_and_all() -> None:
    """Categories get their own seconds; an empty category list limits everything."""
    limits = parse_rate_limits("60:error;attachment:key:quota, 10::org, junk, 5:transaction")
    assert limits == {"error": 60.0, "attachment": 60.0, "": 10.0, "transaction": 5.0}


def test_rate_limit_table_per_category_with_now_passed_in() -> None:
    """An error limit blocks error envelopes only; an all-limit blocks everything, then expires."""
    table = merge_rate_limits({}, {"error": 60.0}, now=1000.0)
    assert limited_until(table, ["error", "attachment"], 1010.0) == 1060.0
    assert limited_until(table, ["transaction"], 1010.0) is None
    table = merge_rate_limits(table, {"": 30.0}, now=1010.0)
    assert limited_until(table, ["transaction"], 1020.0) == 1040.0
    assert limited_until(table, ["error"], 1061.0) is None
    assert merge_rate_limits(table, {}, now=2000.0) == {}


def test_classification_of_every_kind_of_answer() -> None:
    """2xx delivers, 429 and 5xx retry, other 4xx reject, 3xx keeps the report."""
    assert classify_response(202, {}, b"", 0.0) == Delivered(202)
    limited = classify_response(
        429, {"X-Sentry-Rate-Limits": "120:error:key", "Retry-After": "30"}, b"", 0.0
    )
    assert isinstance(limited, Retry)
    assert (limited.after_seconds, dict(limited.rate_limits)) == (30.0, {"error": 120.0})
    bare = classify_response(429, {}, b"", 0.0)
    assert isinstance(bare, Retry)
    assert dict(bare.rate_limits) == {"": 60.0}
    assert classify_response(500, {"Retry-After": "9"}, b"", 0.0) == Retry(
        "server error (HTTP 500)", 9.0, {}, 500
    )
    assert classify_response(400, {}, b"bad \x00\x01 input\n", 0.0) == Reject(
        400, "HTTP 400: bad input"
    )
    assert classify_response(413, {}, b"", 0.0) == Reject(413, "HTTP 413")
    assert isinstance(classify_response(301, {}, b"", 0.0), Retry)
