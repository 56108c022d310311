"""The extra cost of reading a reference's manifest from the registry (the distribution API) before the
image service and the scan: crgate's ``RegistryClient.resolve`` against the emulator's endpoint (Bearer
token flow and Basic) and against Debian's ``docker-registry`` (htpasswd Basic, and token auth with the
tests' token service), all on loopback.

Run: ``python bench/registry.py [--runs 200]``. "cold" is a new client per read (the 401 challenge and,
for Bearer, the token request every time: one reference per run); "warm" reuses one client (credentials
cached per repository: the 2nd..Nth reference of a run). The TLS row reuses connections' context but
each read is a new TLS handshake (urllib keeps no connection pool). Prints medians and p95; not a test.
"""

from __future__ import annotations

import argparse
import ssl
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from crgate.images import parse_image_ref  # noqa: E402
from crgate.registry import RegistryClient  # noqa: E402
from crgate.scanner.credentials.tokens import StaticTokenSource  # noqa: E402
from crgate.timing import Deadline  # noqa: E402
from crgate_emulator import Emulator, scenario_from_dict  # noqa: E402
from ocipush import Pusher  # noqa: E402
from realregistry import start_real_registry  # noqa: E402

TOKEN = "t1.bench-registry-reader"
REF = parse_image_ref("cr.yandex/crpbench/app:multi")


def scenario(auth: str) -> dict:
    return {
        "require_auth": True,
        "registry": {"auth": auth},
        "service_accounts": [{"id": "ajebenchreader000001", "roles": ["container-registry.images.scanner"]}],
        "iam_tokens": [{"token": TOKEN, "service_account_id": "ajebenchreader000001"}],
        "registries": [
            {
                "id": "crpbench",
                "repositories": [
                    {
                        "name": "app",
                        "images": [
                            {"id": "crpbenchamd64", "platform": "linux/amd64"},
                            {"id": "crpbencharm64", "platform": "linux/arm64/v8"},
                        ],
                        "indexes": [
                            {"id": "crpbenchmulti", "tags": ["multi"], "manifests": ["crpbenchamd64", "crpbencharm64"]}
                        ],
                    }
                ],
            }
        ],
    }


def timed(read: Callable[[], object], runs: int) -> list[float]:
    for _ in range(5):
        read()
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        read()
        samples.append(time.perf_counter() - started)
    return samples


def measure(name: str, url: str, runs: int) -> None:
    source = StaticTokenSource(TOKEN, "bench")

    def cold() -> object:
        return RegistryClient(token_source=source, registry_url=url).resolve(REF, Deadline(30))

    warm_client = RegistryClient(token_source=source, registry_url=url)

    def warm() -> object:
        return warm_client.resolve(REF, Deadline(30))

    for mode, read in (("cold", cold), ("warm", warm)):
        samples = sorted(timed(read, runs))
        p95 = samples[int(len(samples) * 0.95) - 1]
        print(f"| {name} | {mode} | {statistics.median(samples) * 1000:.2f} ms | {p95 * 1000:.2f} ms |")


def measure_tls(name: str, url: str, ca_file: str, runs: int) -> float:
    source = StaticTokenSource(TOKEN, "bench")
    warm_client = RegistryClient(token_source=source, registry_url=url, ca_file=ca_file)
    samples = sorted(timed(lambda: warm_client.resolve(REF, Deadline(30)), runs))
    p95 = samples[int(len(samples) * 0.95) - 1]
    print(f"| {name} | warm | {statistics.median(samples) * 1000:.2f} ms | {p95 * 1000:.2f} ms |")
    return statistics.median(timed(ssl.create_default_context, 20))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=200)
    args = parser.parse_args()
    print("| registry | client | median | p95 |")
    print("| --- | --- | --- | --- |")
    for auth in ("bearer", "basic"):
        with Emulator(scenario_from_dict(scenario(auth), source="bench")) as emulator:
            measure(f"emulator ({auth})", emulator.registry_url, args.runs)
    with Emulator(scenario_from_dict(scenario("bearer"), source="bench"), tls=True) as emulator:
        roots = measure_tls("emulator (bearer, TLS)", emulator.registry_url, emulator.ca_file, args.runs)
    for auth in ("basic", "bearer"):
        with tempfile.TemporaryDirectory(prefix="crgate-bench-") as directory:
            registry = start_real_registry(Path(directory), TOKEN, auth=auth)
            try:
                authorize = registry.token_service.authorization if registry.token_service else None
                pusher = Pusher(registry.url, registry.user, registry.password, authorize=authorize)
                images = {p: pusher.image("crpbench/app", p) for p in ("linux/amd64", "linux/arm64/v8")}
                pusher.index("crpbench/app", "multi", images)
                measure(f"docker-registry ({auth})", registry.url, args.runs)
            finally:
                registry.stop()
    print(f"\nloading the system roots for https (once per run): {roots * 1000:.1f} ms")


if __name__ == "__main__":
    main()
