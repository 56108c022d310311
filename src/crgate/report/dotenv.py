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

GitLab refuses a dotenv artifact over 5 KB (its ``dotenv_size`` plan limit), and the job fails at upload
with a message that names neither crgate nor the cause. ``check`` therefore refuses, before any call, a
run whose references could make a larger file (``refuse_oversized``), and the writer checks the file it
made (``UndeliveredReportError``, exit 3) in case a run grows past the estimate.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import TextIO

from crgate.errors import ConfigError, UndeliveredReportError
from crgate.model import ImageRef
from crgate.report.common import Context

PINNED_VARIABLE = "CRGATE_PINNED_IMAGES"
VERDICT_VARIABLE = "CRGATE_VERDICT"
SIZE_LIMIT = 5120
"""GitLab's ``dotenv_size`` plan limit in bytes (the same on every plan; an administrator can change it)."""
_DIGEST_SUFFIX = len("@sha256:") + 64
_VERDICT_LINE = len(f"{VERDICT_VARIABLE}=error\n")
_PINNED = re.compile(r"[a-z0-9.-]+(?::[0-9]+)?/[a-z0-9._/-]+@sha256:[0-9a-f]{64}")


def pinned_references(context: Context) -> list[str]:
    """The pinned form of every gated reference, each once, in report order."""
    seen: dict[str, None] = {}
    for outcome in context.report.images:
        pinned = outcome.source.pinned if outcome.source else None
        if pinned and _PINNED.fullmatch(pinned):
            seen.setdefault(pinned, None)
    return list(seen)


def size_bound(refs: Iterable[ImageRef]) -> int:
    """The most bytes a dotenv report of ``refs`` can take: each pinned once, at its digest's length."""
    names = {f"{ref.host}/{ref.registry_id}/{ref.repository}" for ref in refs}  # the same image pins once
    pinned = sum(len(name) + _DIGEST_SUFFIX + 1 for name in names)
    return _VERDICT_LINE + len(f"{PINNED_VARIABLE}=\n") + pinned


def refuse_oversized(refs: Iterable[ImageRef], option: str) -> None:
    """ConfigError (exit 2, before any call) when ``refs`` could make a dotenv report GitLab refuses."""
    refs = list(refs)
    bound = size_bound(refs)
    if bound > SIZE_LIMIT:
        raise ConfigError(
            f"{option}: the pinned references of {len(refs)} images can take {bound} bytes, over GitLab's "
            f"{SIZE_LIMIT}-byte dotenv limit, so GitLab would refuse the report and fail the job; gate fewer "
            "images per job (e.g. one job per chart), or take the pinned references from the JSON report "
            "(references[].pinned) instead"
        )


def write(context: Context, out: TextIO) -> None:
    pinned = pinned_references(context)
    text = f"{VERDICT_VARIABLE}={context.report.verdict.value}\n{PINNED_VARIABLE}={' '.join(pinned)}\n"
    if len(text.encode()) > SIZE_LIMIT:
        raise UndeliveredReportError(
            f"the dotenv report would take {len(text.encode())} bytes ({len(pinned)} pinned references), over "
            f"GitLab's {SIZE_LIMIT}-byte dotenv limit; it was not written. Gate fewer images per job, or take the "
            "pinned references from the JSON report (references[].pinned)"
        )
    out.write(text)
