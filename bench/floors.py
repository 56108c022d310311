"""crgate works on every dependency version its metadata allows: the floors and the newest, each in a fresh venv.

Run: ``python bench/floors.py [--only floor|newest]`` (needs the network to the package index). Prints a
Markdown table for docs/performance.md and exits 1 when a venv fails. Each venv gets crgate and its
emulator (``pip install <checkout> <checkout>/emulator``: the gates below need ``check --emulator``), with
``PIP_NO_CACHE_DIR=1``, so the seconds are a cold install's.

- ``floor``: every runtime dependency at the lower bound pyproject.toml states (``protobuf>=5.26.1`` ->
  ``protobuf==5.26.1``, and so on), given to pip as constraints, so a floor that does not resolve or does
  not work fails here rather than on a user's machine.
- ``newest``: what pip picks today for ``pip install crgate``, the newest release each range allows.

Each venv then runs, with Python's runtime and user warnings made errors (the gRPC stubs warn on a grpcio
older than their generator; protobuf warns on gencode it will stop supporting): ``crgate --version``, and
``crgate check --emulator`` on a clean image (exit 0) and a vulnerable one (exit 1), which drives crgate's
stubs on both sides of a real loopback gRPC connection.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parent.parent
SHOWN = ("protobuf", "grpcio", "googleapis-common-protos", "click", "PyYAML", "PyJWT", "cryptography")
GATES = (("cr.yandex/crpdemo/app:clean", 0), ("cr.yandex/crpdemo/app:vulnerable", 1))


def floors() -> list[str]:
    """``name==lower-bound`` for every runtime dependency of pyproject.toml."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    pins = []
    for requirement in project["dependencies"]:
        found = re.match(r"^([A-Za-z0-9._-]+)\s*(?:\[[^\]]*\])?\s*[^;]*?>=\s*([^,;\s]+)", requirement)
        if not found:
            raise SystemExit(f"pyproject.toml: {requirement!r} states no floor (>=)")
        pins.append(f"{found[1]}=={found[2]}")
    return pins


def installed(python: Path) -> dict[str, str]:
    program = "import sys; from importlib import metadata as m\nfor n in sys.argv[1:]: print(n, m.version(n))"
    done = subprocess.run([str(python), "-c", program, *SHOWN], check=True, capture_output=True, text=True)
    return dict(line.split(" ", 1) for line in done.stdout.splitlines())


def smoke(venv: Path) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CRGATE_", "YC_", "GITHUB_"))}
    env["PYTHONWARNINGS"] = "error::RuntimeWarning,error::UserWarning"
    crgate = str(venv / "bin" / "crgate")
    version = subprocess.run([crgate, "--version"], env=env, capture_output=True, text=True, check=True).stdout
    for reference, wanted in GATES:
        done = subprocess.run(
            [crgate, "check", "--emulator", reference], env=env, capture_output=True, text=True, timeout=300
        )
        if done.returncode != wanted:
            raise SystemExit(f"{venv}: check {reference} exited {done.returncode}, not {wanted}:\n{done.stderr}")
        if "Warning" in done.stderr:
            raise SystemExit(f"{venv}: check {reference} warned:\n{done.stderr}")
    return version.strip()


def site_packages_mb(python: Path) -> float:
    program = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    where = subprocess.run([str(python), "-c", program], check=True, capture_output=True, text=True).stdout.strip()
    done = subprocess.run(["du", "-sk", where], check=True, capture_output=True, text=True)
    return int(done.stdout.split()[0]) / 1024


def build(kind: str, work: Path) -> dict[str, object]:
    venv = work / kind
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    command = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    command += [str(ROOT), str(ROOT / "emulator")]
    if kind == "floor":
        constraints = work / "floors.txt"
        constraints.write_text("\n".join(floors()) + "\n", encoding="utf-8")
        command += ["--constraint", str(constraints)]
    started = time.perf_counter()
    done = subprocess.run(command, env={**os.environ, "PIP_NO_CACHE_DIR": "1"}, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    row: dict[str, object] = {"kind": kind, "install_s": seconds, "versions": {}, "mb": 0.0}
    if done.returncode != 0:
        row["failed"] = "install failed: " + done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "?"
        return row
    row["versions"] = installed(python)
    row["mb"] = site_packages_mb(python)
    try:
        row["crgate"] = smoke(venv)
    except SystemExit as failure:
        row["failed"] = str(failure)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", choices=("floor", "newest"))
    args = parser.parse_args()
    kinds = [args.only] if args.only else ["floor", "newest"]
    with tempfile.TemporaryDirectory(prefix="crgate-floors-") as scratch:
        rows = [build(kind, Path(scratch)) for kind in kinds]
    print(f"Python {sys.version.split()[0]}; per row: fresh venv, install, --version, two gates on the emulator\n")
    print("| venv | " + " | ".join(SHOWN) + " | install | site-packages | gates |")
    print("| --- |" + " --- |" * (len(SHOWN) + 3))
    for row in rows:
        versions = row["versions"]
        assert isinstance(versions, dict)
        cells = " | ".join(versions.get(name, "-") for name in SHOWN)
        verdict = "FAILED" if "failed" in row else "pass: clean 0, vulnerable 1"
        print(f"| {row['kind']} | {cells} | {row['install_s']:.1f} s | {row['mb']:.0f} MB | {verdict} |")
    failed = [row for row in rows if "failed" in row]
    for row in failed:
        print(f"\n{row['kind']}: {row['failed']}", file=sys.stderr)
    if failed:
        sys.exit(1)


if __name__ == "__main__":
    main()
