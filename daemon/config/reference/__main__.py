"""``python -m daemon.config.reference > docs/configuration.md``."""

import sys

from daemon.config.reference import reference

sys.stdout.write(reference())
