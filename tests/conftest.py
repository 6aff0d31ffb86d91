"""Shared fixtures: the Bugsink test server (installed on first use by .ci/install-bugsink);
the suite's hypothesis profile."""

from hypothesis import HealthCheck, settings

from tests.support.bugsink import (  # noqa: F401
    bugsink_project,
    bugsink_server,
    bugsink_server_factory,
    bugsink_template,
)

# The suite runs one worker per core beside other work: a property's examples are the same,
# but how long one takes to generate or run says nothing about the code under test.
settings.register_profile(
    "suite", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("suite")
