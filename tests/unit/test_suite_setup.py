"""The suite's own set-up: tests that must not run side by side really do not, and a hung
test cannot hold the run."""

from __future__ import annotations

import pytest


@pytest.mark.xdist_group("suite-self-check")
def test_xdist_groups_take_effect(request: pytest.FixtureRequest) -> None:
    """Under ``-n`` with loadgroup, a test in an xdist_group is scheduled as part of its group
    (pytest-xdist marks it with an ``@group`` suffix), so the tick-gap floods and the pip builds
    run one after another."""
    config = request.config
    if not hasattr(config, "workerinput") or not config.getoption("loadgroup", False):
        pytest.skip("not an xdist worker with --dist loadgroup")
    assert request.node.nodeid.endswith("@suite-self-check"), request.node.nodeid


def test_every_test_has_a_timeout(request: pytest.FixtureRequest) -> None:
    """pytest-timeout is on with a finite per-test limit."""
    assert request.config.pluginmanager.hasplugin("timeout")
    assert 0 < float(request.config.getini("timeout")) <= 600
