"""Shared fixtures: the Bugsink test server (installed on first use by .ci/install-bugsink)."""

from tests.support.bugsink import (  # noqa: F401
    bugsink_project,
    bugsink_server,
    bugsink_server_factory,
    bugsink_template,
)
