"""Defaults the CLI shows in ``--help`` and the core uses: kept here, free of imports, for start-up."""

DEFAULT_TIMEOUT = 900.0
"""Seconds for a whole ``crgate check`` run."""
MAX_TIMEOUT = 7 * 24 * 3600.0
"""A week: a longer ``--timeout`` is a typo, and infinity would never end."""
DEFAULT_CONCURRENCY = 10
"""Images scanned at once: Yandex's quota is 10 concurrent scans per cloud."""
DEFAULT_SARIF_LOCATION = "Dockerfile"
"""The repository path SARIF results point at."""
