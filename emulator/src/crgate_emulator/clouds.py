"""Clouds of a scenario and their scan quota: Yandex allows a number of concurrent scans per cloud
(``container-registry.parallelScans.count``, 10 by default) and refuses a ``Scan`` past it. Scans of
other clients (scan-on-push, scheduled scans, other pipelines) share the quota. Format (all optional)::

    quota:                         # the default cloud's quota (every registry without `cloud:` is in it)
      limit: 10                    # concurrent scans; null = unlimited (`max_concurrent_scans: N` is short
                                   # for `quota: {limit: N}`)
      code: RESOURCE_EXHAUSTED     # how a Scan past the limit is refused; Yandex does not document the code,
                                   # so FAILED_PRECONDITION, ABORTED, ... can be tried too
      message: "..."               # default: Quota limit container-registry.parallelScans.count exceeded
      others:                      # scans of other clients holding slots (a mapping or a list of them)
        - {count: 10, for: 45, after: 0}   # `count` slots from `after` s after start, for `for` s
    clouds:                        # more clouds, each with its own quota (same keys as above)
      - {id: b1gsecondcloud, quota: {limit: 2}}
    registries:
      - {id: crpother, cloud: b1gsecondcloud, repositories: [...]}

A scan counts against its image's cloud while it runs, whoever started it (a scan already RUNNING at
start, ``running_scan``, counts too). A refused ``Scan`` creates nothing; an idempotent repeat (a known
``idempotency-key``) returns its operation whatever the quota says.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from crgate_emulator.fields import GRPC_CODES, FieldParser, join

QUOTA_NAME = "container-registry.parallelScans.count"
DEFAULT_LIMIT = 10
DEFAULT_CLOUD_ID = "b1gemulatorcloud0000"
DEFAULT_REFUSAL_CODE = "RESOURCE_EXHAUSTED"
QUOTA_KEYS = ("limit", "code", "message", "others")


@dataclass(frozen=True)
class OtherScans:
    """``count`` scans of other clients, running from ``after`` to ``after + seconds`` after start."""

    count: int
    seconds: float
    after: float = 0.0

    def running_at(self, elapsed: float) -> int:
        return self.count if self.after <= elapsed < self.after + self.seconds else 0


@dataclass(frozen=True)
class Quota:
    """A cloud's concurrent-scan quota and how a ``Scan`` past it is refused."""

    limit: int | None = DEFAULT_LIMIT
    code: str = DEFAULT_REFUSAL_CODE
    message: str = ""
    others: tuple[OtherScans, ...] = ()

    def refusal_message(self) -> str:
        """The refusal's text; by default worded as Yandex words quota errors of other services."""
        return self.message or f"Quota limit {QUOTA_NAME} exceeded"

    def others_running(self, elapsed: float) -> int:
        """Slots other clients' scans hold ``elapsed`` seconds after the emulator started."""
        return sum(other.running_at(elapsed) for other in self.others)


@dataclass(frozen=True)
class Cloud:
    id: str
    quota: Quota = field(default_factory=Quota)


def parse_clouds(parser: FieldParser, raw: dict[str, Any], node: Any) -> tuple[Cloud, ...]:
    """The scenario's clouds, the default one (``DEFAULT_CLOUD_ID``) first."""
    if "quota" in raw and "max_concurrent_scans" in raw:
        parser.fail("max_concurrent_scans", "give either max_concurrent_scans or quota.limit, not both", node)
    if "max_concurrent_scans" in raw:
        limit = raw["max_concurrent_scans"]
        default = Quota(
            limit=None
            if limit is None
            else parser.integer(limit, "max_concurrent_scans", node, default=DEFAULT_LIMIT, minimum=1)
        )
    else:
        default = _quota(parser, raw.get("quota"), "quota", node)
    clouds = [Cloud(DEFAULT_CLOUD_ID, default)]
    for i, item in enumerate(parser.seq(raw.get("clouds"), "clouds", node)):
        path = f"clouds[{i}]"
        entry = parser.mapping(item, path, ("id", "quota"), ("id",))
        cloud_id = parser.ident(entry["id"], join(path, "id"), item)
        if cloud_id in (cloud.id for cloud in clouds):
            why = "is the default cloud's id" if cloud_id == DEFAULT_CLOUD_ID else "is a duplicate"
            parser.fail(join(path, "id"), f"{cloud_id!r} {why}", item)
        clouds.append(Cloud(cloud_id, _quota(parser, entry.get("quota"), join(path, "quota"), item)))
    return tuple(clouds)


def check_cloud(parser: FieldParser, cloud_id: str, clouds: Sequence[Cloud], path: str, node: Any) -> str:
    """A registry's ``cloud:`` must name a declared cloud."""
    if cloud_id not in (cloud.id for cloud in clouds):
        known = ", ".join(cloud.id for cloud in clouds)
        parser.fail(path, f"no cloud {cloud_id!r} (declare it under clouds:; known: {known})", node)
    return cloud_id


def _quota(parser: FieldParser, data: Any, path: str, node: Any) -> Quota:
    if data is None:
        return Quota()
    raw = parser.mapping(data, path, QUOTA_KEYS)
    limit = (
        None
        if "limit" in raw and raw["limit"] is None
        else parser.integer(raw.get("limit"), join(path, "limit"), data, default=DEFAULT_LIMIT, minimum=1)
    )
    code = DEFAULT_REFUSAL_CODE
    if raw.get("code") is not None:
        code = parser.choice(raw["code"], join(path, "code"), data, GRPC_CODES)
        if code == "OK":
            parser.fail(join(path, "code"), "a refusal needs an error code, not OK", data)
    others_data = raw.get("others")
    items = [others_data] if isinstance(others_data, dict) else parser.seq(others_data, join(path, "others"), data)
    others = tuple(_others(parser, item, f"{join(path, 'others')}[{i}]") for i, item in enumerate(items))
    message = parser.text(raw.get("message"), join(path, "message"), data)
    return Quota(limit=limit, code=code, message=message, others=others)


def _others(parser: FieldParser, data: Any, path: str) -> OtherScans:
    raw = parser.mapping(data, path, ("count", "for", "after"), ("count", "for"))
    return OtherScans(
        count=parser.integer(raw["count"], join(path, "count"), data, default=1, minimum=1),
        seconds=parser.number(raw["for"], join(path, "for"), data, default=0.0),
        after=parser.number(raw.get("after"), join(path, "after"), data, default=0.0),
    )
