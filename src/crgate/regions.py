"""Yandex Cloud installations ("regions") a registry may live in, and which one a run's references name.

Each region has its own registry hosts, API root and IAM service. The region decides where crgate sends
its calls when no ``--endpoint``/``--api-endpoint`` is given, and the ``aud`` of service-account JWTs:
``https://iam.<api host>/iam/v1/tokens``, as Yandex's docs and Python SDK derive it. The audience names
the real IAM service of the region, so it stays the region's even when ``--endpoint`` sends the calls to
a proxy or an emulator. Pure: no I/O, no gRPC.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from crgate.errors import ConfigError
from crgate.model import ImageRef
from crgate.textsafe import safe


@dataclass(frozen=True)
class Region:
    """One Yandex Cloud installation.

    ``endpoints`` are the documented production addresses per crgate service (``scanner``, ``image``,
    ``operation``, ``iam``); empty means "ask endpoint discovery at ``api_root``", which is what Yandex's
    SDKs do for every region.
    """

    name: str
    title: str
    registry_hosts: tuple[str, ...]
    api_root: str
    endpoints: tuple[tuple[str, str], ...] = ()

    @property
    def api_host(self) -> str:
        """The API root without its port (``api.cloud.yandex.net``)."""
        return self.api_root.rsplit(":", 1)[0]

    @property
    def iam_audience(self) -> str:
        """The ``aud`` claim of a service-account JWT for this region's ``IamTokenService.Create``."""
        return f"https://iam.{self.api_host}/iam/v1/tokens"


MAIN = Region(
    name="ru-central1",
    title="Yandex Cloud",
    registry_hosts=("cr.yandex", "cr.cloud.yandex.net", "container-registry.cloud.yandex.net"),
    api_root="api.cloud.yandex.net:443",
    endpoints=(
        ("scanner", "container-registry.api.cloud.yandex.net:443"),
        ("image", "container-registry.api.cloud.yandex.net:443"),
        ("operation", "operation.api.cloud.yandex.net:443"),
        ("iam", "iam.api.cloud.yandex.net:443"),
    ),
)
# Yandex documents the Kazakhstan API root, not every service's address there: discovery names them.
KAZAKHSTAN = Region(
    name="kz1",
    title="Yandex Cloud Kazakhstan",
    registry_hosts=("cr.yandexcloud.kz",),
    api_root="api.yandexcloud.kz:443",
)
REGIONS: tuple[Region, ...] = (MAIN, KAZAKHSTAN)
DEFAULT_REGION = MAIN


def registry_hosts() -> tuple[str, ...]:
    """Every registry host of every region, the canonical ``cr.yandex`` first."""
    return tuple(host for region in REGIONS for host in region.registry_hosts)


AUTH_HOSTS: tuple[str, ...] = ("auth.yandex.cloud",)
"""Yandex's documented token service (workload identity federation's exchange, ``/oauth/token``)."""


def api_hosts() -> tuple[str, ...]:
    """The API root host of every region (``api.cloud.yandex.net``, ``api.yandexcloud.kz``)."""
    return tuple(region.api_host for region in REGIONS)


def refuse_foreign_override(
    host: str, value: str, *, variable: str, flag: str, known: Sequence[str], what: str
) -> None:
    """ConfigError (exit 2) unless ``host`` is one of Yandex's ``known`` hosts.

    An environment variable can be set by whoever shapes the job (a pipeline variable, an earlier CI
    step writing ``$GITHUB_ENV``), so an override of where credentials go that comes only from the
    environment may choose among Yandex's own hosts and nothing else (loopback included: an earlier step
    can listen there). Another host must be named on the command line (``flag``), where the trusted CI
    configuration shows it. ``value`` (the variable's text) is quoted sanitized in the message.
    """
    if host.lower().strip("[]") in known:
        return
    raise ConfigError(
        f"{variable} names {safe(host, 100)}, which is not {what} ({', '.join(known)}); crgate sends "
        "credentials to a host set only by an environment variable when it is Yandex's own. If this "
        f"host is meant, pass it on the command line instead: {flag} {safe(value, 200)} (and unset {variable})"
    )


def region_named(name: str) -> Region:
    """The region called ``name`` (``ru-central1``, ``kz1``); ConfigError naming the known ones."""
    for region in REGIONS:
        if region.name == name:
            return region
    raise ConfigError(f"unknown region '{name}' (known: {', '.join(r.name for r in REGIONS)})")


def region_of_host(host: str) -> Region:
    """The region whose registry ``host`` is (case-insensitive); ConfigError for a foreign host."""
    wanted = host.lower()
    for region in REGIONS:
        if wanted in region.registry_hosts:
            return region
    raise ConfigError(f"'{host}' is not a Yandex Container Registry host (known: {', '.join(registry_hosts())})")


def region_of_api_root(address: str) -> Region | None:
    """The region whose API root ``address`` (``HOST:PORT`` or ``HOST``) is, if it is one."""
    host = address.lower().rsplit(":", 1)[0] if ":" in address else address.lower()
    return next((region for region in REGIONS if region.api_host == host), None)


def region_of(refs: Iterable[ImageRef], *, api_endpoint: str | None = None) -> Region:
    """The one region all references live in (the main one when none names a region).

    ``api_endpoint`` (``--api-endpoint`` or ``YC_ENDPOINT``) picks the region when no reference does
    (only ``--image-id``), if it is a known region's API root; another address (a proxy) does not.
    References of two regions, or references and a known API root of different regions, are a
    ConfigError (exit 2): one run talks to one installation, and a wrong audience or endpoint would fail
    only later, as an authentication error.
    """
    found: dict[str, tuple[Region, str]] = {}
    for ref in refs:
        region = region_of_host(ref.host)
        found.setdefault(region.name, (region, ref.raw))
    if len(found) > 1:
        (first, first_ref), (second, second_ref) = list(found.values())[:2]
        raise ConfigError(
            f"references of two Yandex Cloud regions in one run: '{first_ref}' is in {first.title} "
            f"({first.name}), '{second_ref}' in {second.title} ({second.name}); run crgate once per region"
        )
    by_root = region_of_api_root(api_endpoint) if api_endpoint else None
    if not found:
        return by_root or DEFAULT_REGION
    region, ref_text = next(iter(found.values()))
    if by_root is not None and by_root != region:
        raise ConfigError(
            f"'{ref_text}' is in {region.title} ({region.name}), but the API endpoint {api_endpoint} is "
            f"{by_root.title}'s; drop --api-endpoint/YC_ENDPOINT or use {region.api_root}"
        )
    return region
