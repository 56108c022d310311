"""How a verdict was reached: the provenance every report records, and the loosenings in it.

A *loosening* is anything in force that makes the gate weaker than its policy file reads: a flag
(``--report-only``, ``--max`` above the policy's limit, ``--only-fixed``, ``--platform``, ``--today``
in the past), the policy's own ways of setting findings aside (ignore rules, a baseline, fixable-only
limits, unscannable images let through), the emulator, an endpoint, registry or token endpoint other
than Yandex Cloud's (from a flag or from the environment), or what an integration declares
(``--declare-loosening``). crgate prints them in one block at the top of the log before any call and
records them, with where each came from, in every report (``Provenance``). A gate that is exactly its
policy file has none.

Pure: the CLI gathers the facts (flags, their sources, the environment) and this module decides what
they mean. Adding a kind is a ``LooseningKind`` member and, for a policy feature, one row of
``POLICY_LOOSENINGS``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from crgate.model import THRESHOLD_KEYS, Policy, Word
from crgate.policy import BUILTIN_DEFAULT_SOURCE
from crgate.textsafe import safe

MAX_DECLARED = 50
"""``--declare-loosening`` given more often than this is a usage error (every input is bounded)."""
MAX_DECLARED_TEXT = 500
"""Characters of one declared loosening kept (made inert by ``crgate.textsafe``)."""


class LooseningKind(Word):
    """What weakens the gate. The values appear in every report: only ever add members."""

    REPORT_ONLY = "report-only"
    LIMIT_RAISED = "limit-raised"
    ONLY_FIXED = "only-fixed"
    FIXABLE_ONLY = "fixable-only"
    PLATFORM = "platform"
    IGNORE_RULES = "ignore-rules"
    BASELINE = "baseline"
    UNSCANNABLE = "unscannable"
    TODAY = "today"
    EMULATOR = "emulator"
    API_ENDPOINT = "api-endpoint"
    REGISTRY = "registry"
    TOKEN_ENDPOINT = "token-endpoint"
    METADATA_ADDRESS = "metadata-address"
    CA_FILE = "ca-file"
    DECLARED = "declared"
    SAVED_REPORT = "saved-report"
    VEX = "vex"
    IMAGE_RULES = "image-rules"


class SettingSource(Word):
    """Where a setting or a loosening came from."""

    DEFAULT = "default"
    FLAG = "flag"
    ENVIRONMENT = "environment"
    POLICY = "policy"
    INTEGRATION = "integration"
    EMULATOR = "emulator"
    SAVED_REPORT = "saved-report"


@dataclass(frozen=True)
class Loosening:
    """One way the gate in force is weaker than its policy file."""

    kind: LooseningKind
    source: SettingSource
    name: str
    """The flag, variable, policy file or integration that set it (inert text)."""
    detail: str
    """What it does, in crgate's words (any outside text in it already made inert)."""

    def describe(self) -> str:
        return f"{self.kind} ({self.name}): {self.detail}"


@dataclass(frozen=True)
class Setting:
    """Where a run sends a kind of call (API, registry, token exchange), and where that came from."""

    values: tuple[str, ...]
    """The addresses or URLs used; empty when the run made no such call."""
    source: SettingSource = SettingSource.DEFAULT
    name: str | None = None
    """The flag or variable that set it (None for a default)."""


@dataclass(frozen=True)
class FileDigest:
    """A file a run read and judged by, with the SHA-256 of its bytes as read."""

    path: str
    sha256: str


@dataclass(frozen=True)
class PolicyOrigin:
    """Which policy judged: its file (None for the built-in default), digest, and how it was found."""

    path: str | None
    sha256: str | None
    source: str
    """``flag`` (``--policy``), ``discovered`` (``./.crgate.yaml``, ``./crgate.yaml``), ``built-in`` or
    ``code`` (a policy made by a library caller)."""


@dataclass(frozen=True)
class Provenance:
    """How a run's verdict was reached; every report format records it (``crgate.report.provenance``).

    The effective limits and the start and end times are the ``RunReport``'s own (its ``policy``,
    ``started_at``, ``finished_at``): reports render them from there, so they can never disagree.
    """

    crgate_version: str
    policy: PolicyOrigin
    loosenings: tuple[Loosening, ...] = ()
    emulated: bool = False
    """True for ``--emulator`` (and for a re-judged report that does not prove it was not emulated)."""
    api_endpoint: Setting = Setting(())
    registry: Setting = Setting(())
    token_endpoint: Setting = Setting(())
    credential_kind: str = "none"
    """``iam-token``, ``sa-key``, ``federation``, ``yc-token``, ``metadata`` or ``none``; never a secret."""
    credential_source: str | None = None
    """The flag or variable the credential came from (its name, never its value)."""
    vex_files: tuple[FileDigest, ...] = ()
    kev_files: tuple[FileDigest, ...] = ()
    evaluated_from: FileDigest | None = None
    """``crgate evaluate``: the saved report re-judged."""


# -- the policy's own loosenings: one row per kind ---------------------------------------------------


def _ignore_rules(policy: Policy) -> str | None:
    if not policy.ignore:
        return None
    ids = ", ".join(safe(rule.id, 100) for rule in policy.ignore[:10])
    more = f" and {len(policy.ignore) - 10} more" if len(policy.ignore) > 10 else ""
    return f"{len(policy.ignore)} ignore rule(s) set matching findings aside: {ids}{more}"


def _baseline(policy: Policy) -> str | None:
    if policy.baseline is None:
        return None
    missing = "; passes when the baseline is missing" if policy.baseline.missing == "pass" else ""
    return f"findings the baseline image {safe(policy.baseline.image, 300)} also has are not counted{missing}"


def _fixable_only(policy: Policy) -> str | None:
    keys = [key for key in THRESHOLD_KEYS if key in policy.fixable_only]
    if policy.only_fixed or not keys:
        return None  # only_fixed: said once, as --only-fixed or as the policy's
    return f"only findings with a known fix count against: {', '.join(keys)}"


POLICY_LOOSENINGS: tuple[tuple[LooseningKind, Callable[[Policy], str | None]], ...] = (
    (LooseningKind.IGNORE_RULES, _ignore_rules),
    (LooseningKind.BASELINE, _baseline),
    (LooseningKind.FIXABLE_ONLY, _fixable_only),
)
"""What a policy sets aside, kind by kind: ``(kind, what it does or None)``. VEX files, a KEV catalog and
per-image rules each add a row here when the policy model has them."""


def policy_loosenings(policy: Policy) -> list[Loosening]:
    """What ``policy`` itself (before any flag) sets aside."""
    name = safe(policy.source, 300)
    found = [
        Loosening(kind, SettingSource.POLICY, name, detail)
        for kind, check in POLICY_LOOSENINGS
        if (detail := check(policy)) is not None
    ]
    if policy.only_fixed:
        found.append(
            Loosening(LooseningKind.ONLY_FIXED, SettingSource.POLICY, name, "only findings with a known fix count")
        )
    return found


def input_loosenings(policy: Policy, policy_file: str) -> list[Loosening]:
    """VEX documents in force (their statements take findings out of the counts) and ``images:`` rules
    (they judge the images they match with limits of their own), from the policy or ``--vex``;
    ``policy_file``: the policy's own source (before ``--vex`` named itself in ``policy.source``)."""
    found = []
    for document in policy.all_vex:
        source, name = (
            (SettingSource.POLICY, safe(policy_file, 300)) if document.from_policy else (SettingSource.FLAG, "--vex")
        )
        detail = (
            f"{len(document.statements)} statement(s) of {safe(document.path, 300)} (sha256 {document.sha256[:12]}) "
            "may take findings out of the counts"
        )
        found.append(Loosening(LooseningKind.VEX, source, name, detail))
    if policy.images:
        detail = f"{len(policy.images)} images: rule(s) judge the images they match with limits of their own"
        found.append(Loosening(LooseningKind.IMAGE_RULES, SettingSource.POLICY, safe(policy_file, 300), detail))
    return found


def input_files(policy: Policy) -> tuple[tuple[FileDigest, ...], tuple[FileDigest, ...]]:
    """(VEX documents, KEV catalogs) the policy in force read, by path and sha256, for the provenance."""
    vex = tuple(FileDigest(path, digest) for kind, path, digest in policy.source_files if kind == "vex")
    kev = tuple(FileDigest(path, digest) for kind, path, digest in policy.source_files if kind == "kev")
    return vex, kev


def override_loosenings(base: Policy, effective: Policy) -> list[Loosening]:
    """``--max`` above the policy's limit and ``--only-fixed`` (``crgate.overrides`` over ``base``)."""
    found = []
    for key in THRESHOLD_KEYS:
        if key in base.thresholds and effective.thresholds.get(key, base.thresholds[key]) > base.thresholds[key]:
            detail = f"{key} <= {effective.thresholds[key]} instead of the policy's {key} <= {base.thresholds[key]}"
            found.append(Loosening(LooseningKind.LIMIT_RAISED, SettingSource.FLAG, "--max", detail))
        elif key in base.thresholds and key not in effective.thresholds:
            detail = f"no {key} limit instead of the policy's {key} <= {base.thresholds[key]}"
            found.append(Loosening(LooseningKind.LIMIT_RAISED, SettingSource.FLAG, "--max", detail))
    if effective.only_fixed and not base.only_fixed:
        detail = "only findings with a known fix count against every limit"
        found.append(Loosening(LooseningKind.ONLY_FIXED, SettingSource.FLAG, "--only-fixed", detail))
    return found


def declared_loosenings(texts: Sequence[str]) -> list[Loosening]:
    """``--declare-loosening TEXT``: what an integration says it changed (its input mapped to a flag, a
    variable that differs from its input). The text is untrusted: made inert and bounded here, once."""
    if len(texts) > MAX_DECLARED:
        raise ValueError(f"--declare-loosening is given {len(texts)} times; at most {MAX_DECLARED}")
    return [
        Loosening(
            LooseningKind.DECLARED, SettingSource.INTEGRATION, "--declare-loosening", safe(text, MAX_DECLARED_TEXT)
        )
        for text in texts
        if text.strip()
    ]


@dataclass(frozen=True)
class Flags:
    """The check's settings that can loosen it, as the CLI settled them (each with its source)."""

    report_only: bool = False
    platforms: tuple[str, ...] = ()
    unscannable: tuple[str, ...] = ()
    """Images of the manifests outside Yandex Container Registry."""
    today: dt.date | None = None
    real_today: dt.date | None = None
    emulator: str | None = None
    """None: no emulator; else what it serves (``demo data`` or the scenario file)."""
    api_endpoint: Setting = Setting(())
    registry: Setting = Setting(())
    token_endpoint: Setting = Setting(())
    federation: bool = False
    """Whether the run asks for a federation exchange (so the token endpoint is used)."""
    metadata_address: Setting = Setting(())
    """``YC_METADATA_ADDR``, when set."""
    ca_file: str | None = None
    trust_variables: tuple[tuple[str, str], ...] = ()
    """Set variables (name, value) of ``TRUST_VARIABLES``: an earlier step's way to make TLS trust its CA."""
    declared: tuple[str, ...] = ()


def run_loosenings(base: Policy, effective: Policy, flags: Flags) -> tuple[Loosening, ...]:
    """Every loosening of a ``check`` run, in the order the block prints them."""
    found: list[Loosening] = []
    if flags.emulator is not None:
        detail = f"results come from crgate's built-in emulator ({safe(flags.emulator, 300)}), not Yandex Cloud"
        found.append(Loosening(LooseningKind.EMULATOR, SettingSource.FLAG, "--emulator", detail))
    if flags.report_only:
        detail = "policy violations do not fail the run (errors still do)"
        found.append(Loosening(LooseningKind.REPORT_ONLY, SettingSource.FLAG, "--report-only", detail))
    found += override_loosenings(base, effective)
    found += policy_loosenings(base)
    found += input_loosenings(effective, base.source)
    if flags.platforms:
        detail = f"only {', '.join(safe(p, 50) for p in flags.platforms)} of a multi-platform image are gated"
        found.append(Loosening(LooseningKind.PLATFORM, SettingSource.FLAG, "--platform", detail))
    if flags.unscannable and base.unscannable != "fail":
        detail = f"{len(flags.unscannable)} image(s) outside Yandex Container Registry are not gated"
        name = f"{safe(base.source, 300)} (unscannable: {base.unscannable})"
        found.append(Loosening(LooseningKind.UNSCANNABLE, SettingSource.POLICY, name, detail))
    if flags.real_today is not None:
        found += today_loosening(flags.today, flags.real_today)
    found += endpoint_loosenings(flags)
    found += declared_loosenings(flags.declared)
    return tuple(found)


def endpoint_loosenings(flags: Flags) -> list[Loosening]:
    """Calls sent elsewhere than Yandex Cloud's defaults (the emulator's own are said by its loosening)."""
    found = []
    for kind, setting, what in (
        (LooseningKind.API_ENDPOINT, flags.api_endpoint, "API calls (scans and their results) go to"),
        (LooseningKind.REGISTRY, flags.registry, "the registry that says which digest a tag names is"),
        (LooseningKind.TOKEN_ENDPOINT, flags.token_endpoint, "the job's OIDC token is exchanged at"),
    ):
        if setting.source in (SettingSource.FLAG, SettingSource.ENVIRONMENT) and setting.values:
            if kind == LooseningKind.TOKEN_ENDPOINT and not flags.federation:
                continue  # set, but no exchange happens: it changes nothing
            values = ", ".join(safe(value, 300) for value in setting.values)
            only = " (environment only)" if setting.source == SettingSource.ENVIRONMENT else ""
            found.append(Loosening(kind, setting.source, setting.name or "", f"{what} {values}{only}"))
    metadata = flags.metadata_address
    if metadata.values:
        detail = f"the VM metadata service (a source of tokens) is looked for at {safe(metadata.values[0], 300)}"
        found.append(Loosening(LooseningKind.METADATA_ADDRESS, metadata.source, metadata.name or "", detail))
    if flags.ca_file:
        detail = f"TLS trusts the CA certificates of {safe(flags.ca_file, 300)} instead of the system's"
        found.append(Loosening(LooseningKind.CA_FILE, SettingSource.FLAG, "--ca-file", detail))
    for name, value in flags.trust_variables:
        detail = f"TLS trusts the CA certificates of {safe(value, 300)} instead of the system's (environment only)"
        found.append(Loosening(LooseningKind.CA_FILE, SettingSource.ENVIRONMENT, name, detail))
    return found


TRUST_VARIABLES = ("SSL_CERT_FILE", "SSL_CERT_DIR", "GRPC_DEFAULT_SSL_ROOTS_FILE_PATH")
"""Variables that replace the trust store of OpenSSL (the registry and token-endpoint HTTPS) or of gRPC when
``--ca-file`` is not given: with a proxy, whoever set one can read the token and answer for the cloud."""


def trust_variables(env: Mapping[str, str], ca_file: str | None) -> tuple[tuple[str, str], ...]:
    """The ``TRUST_VARIABLES`` set in ``env`` to anything but the system's own store (many images and Nix
    set them to it); none when ``--ca-file`` decides the trust itself (crgate then loads that file for gRPC
    and HTTPS alike)."""
    if ca_file:
        return ()
    import os
    import ssl

    defaults = ssl.get_default_verify_paths()
    system = {os.path.realpath(path) for path in (defaults.openssl_cafile, defaults.openssl_capath) if path}
    found = []
    for name in TRUST_VARIABLES:
        value = env.get(name, "").strip()
        if value and os.path.realpath(value) not in system:
            found.append((name, value))
    return tuple(found)


def policy_origin(policy: Policy, *, explicit: bool) -> PolicyOrigin:
    """The policy's file, digest and how it was found (before any flag changed it)."""
    if policy.source == BUILTIN_DEFAULT_SOURCE and not explicit:
        return PolicyOrigin(None, policy.sha256, "built-in")
    if policy.sha256 is None:
        return PolicyOrigin(None, None, "code")
    return PolicyOrigin(policy.source, policy.sha256, "flag" if explicit else "discovered")


def default_provenance(policy: Policy, version: str) -> Provenance:
    """What a report says when its maker recorded nothing (a library caller): the policy, nothing else."""
    return Provenance(version, policy_origin(policy, explicit=False))


def emulator_marks(loosenings: Iterable[Loosening]) -> bool:
    """True when one of ``loosenings`` is the emulator."""
    return any(loosening.kind == LooseningKind.EMULATOR for loosening in loosenings)


def evaluation_provenance(
    policy: Policy,
    version: str,
    *,
    saved: FileDigest,
    saved_emulated: bool,
    saved_recorded: bool,
    saved_loosenings: Sequence[str],
    explicit_policy: bool = False,
    extra: Sequence[Loosening] = (),
) -> Provenance:
    """``crgate evaluate``: the saved run's ``emulated`` and loosenings carried through (a report that
    records no provenance counts as emulated: nothing proves it came from Yandex Cloud), plus the
    re-judgement itself and the new policy's own loosenings."""
    name = safe(saved.path, 300)
    found = [
        Loosening(
            LooseningKind.SAVED_REPORT,
            SettingSource.SAVED_REPORT,
            name,
            "re-judged offline from a saved report: its results are only as trustworthy as that file",
        )
    ]
    if not saved_recorded:
        detail = "the saved report records no provenance: it counts as emulated"
        found.append(Loosening(LooseningKind.SAVED_REPORT, SettingSource.SAVED_REPORT, name, detail))
    found += [
        Loosening(LooseningKind.SAVED_REPORT, SettingSource.SAVED_REPORT, name, f"the saved run was loosened: {text}")
        for text in saved_loosenings
    ]
    found += policy_loosenings(policy)
    found += input_loosenings(policy, policy.source)
    found += extra
    emulated = saved_emulated or not saved_recorded
    if emulated and saved_recorded:
        detail = "the saved run's results came from crgate's built-in emulator, not Yandex Cloud"
        found.insert(0, Loosening(LooseningKind.EMULATOR, SettingSource.SAVED_REPORT, name, detail))
    unknown = Setting((), SettingSource.SAVED_REPORT, name)
    vex_files, kev_files = input_files(policy)
    return Provenance(
        version,
        policy_origin(policy, explicit=explicit_policy),
        vex_files=vex_files,
        kev_files=kev_files,
        loosenings=tuple(found),
        emulated=emulated,
        api_endpoint=unknown,
        registry=unknown,
        token_endpoint=unknown,
        evaluated_from=saved,
    )


def today_loosening(today: dt.date | None, real_today: dt.date) -> list[Loosening]:
    """``--today`` before today: ignore rules that have expired since still apply."""
    if today is None or today >= real_today:
        return []
    detail = f"ignore rules are judged as of {today.isoformat()}: rules expired since then still apply"
    return [Loosening(LooseningKind.TODAY, SettingSource.FLAG, "--today", detail)]
