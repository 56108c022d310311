"""A dotenv report (``--output dotenv=crgate.env``): the pinned references for later CI jobs.

GitLab's ``artifacts: reports: dotenv`` turns each ``KEY=value`` line into a variable of the jobs that
follow, as the GitHub Action's ``pinned-images`` output does for later steps. A dotenv value is one line,
so the references are separated by spaces::

    CRGATE_VERDICT=pass
    CRGATE_PINNED_IMAGES=cr.yandex/crp.../app@sha256:... cr.yandex/crp.../web@sha256:...

``CRGATE_PINNED_IMAGES`` holds what each gated reference resolved to (the index's digest for an index),
each once, in report order; a reference that could not be resolved is absent. ``CRGATE_VERDICT`` is the
run's verdict (``pass``, ``fail``, ``error``), so a later job can refuse to deploy what did not pass even
when a violation was allowed to fail. Every value is checked against the form crgate writes: nothing
from a manifest or the registry reaches this file other than a digest reference.
"""

from __future__ import annotations

import re
from typing import TextIO

from crgate.report.common import Context

PINNED_VARIABLE = "CRGATE_PINNED_IMAGES"
VERDICT_VARIABLE = "CRGATE_VERDICT"
_PINNED = re.compile(r"[a-z0-9.-]+(?::[0-9]+)?/[a-z0-9._/-]+@sha256:[0-9a-f]{64}")


def pinned_references(context: Context) -> list[str]:
    """The pinned form of every gated reference, each once, in report order."""
    seen: dict[str, None] = {}
    for outcome in context.report.images:
        pinned = outcome.source.pinned if outcome.source else None
        if pinned and _PINNED.fullmatch(pinned):
            seen.setdefault(pinned, None)
    return list(seen)


def write(context: Context, out: TextIO) -> None:
    out.write(f"{VERDICT_VARIABLE}={context.report.verdict.value}\n")
    out.write(f"{PINNED_VARIABLE}={' '.join(pinned_references(context))}\n")
