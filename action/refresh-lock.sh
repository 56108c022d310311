#!/usr/bin/env bash
# Refreshes action/requirements.lock: the exact dependency set the GitHub Action installs into its venv,
# every version pinned and every file hashed, so that a new release of a dependency cannot change a gate
# until someone refreshes the lock and CI has run on it. Run from anywhere, with network access to PyPI:
#
#   action/refresh-lock.sh
#
# It resolves crgate's [project] dependencies (pyproject.toml) plus its build backend ([build-system]
# requires; the action builds the checkout with --no-build-isolation, so setuptools is pinned too) for
# every platform and Python crgate supports (uv's universal resolution, markers kept), with a pinned uv in
# a throwaway venv. crgate carries its own generated Yandex stubs (crgate._proto), so the lock holds no
# yandexcloud and none of the SDK's own dependencies; the excludes below only keep them out should a
# dependency ever pull one in again (grpcio-tools, requests, six, deprecated: see docs/performance.md).
# The action installs the lock with --no-deps --require-hashes, so nothing outside it is installed.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(dirname "$here")"
uv_version="0.13.8"

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
python3 -m venv "$tmp/uv"
"$tmp/uv/bin/python" -m pip install --quiet --disable-pip-version-check "uv==$uv_version"

printf '%s\n' grpcio-tools requests six deprecated > "$tmp/excludes.txt"
# The build backend, read from pyproject.toml (tomllib: Python 3.11+).
python3 - "$root/pyproject.toml" > "$tmp/build.in" <<'EOF'
import sys, tomllib
with open(sys.argv[1], "rb") as handle:
    print("\n".join(tomllib.load(handle)["build-system"]["requires"]))
EOF

cd "$root"
"$tmp/uv/bin/uv" pip compile pyproject.toml "$tmp/build.in" \
  --universal --python-version 3.10 --generate-hashes --no-annotate \
  --excludes "$tmp/excludes.txt" \
  --custom-compile-command "action/refresh-lock.sh" \
  --output-file action/requirements.lock --quiet
echo "wrote action/requirements.lock ($(grep -c '^[a-z]' action/requirements.lock) pins)"
# The GitLab component carries the same lock (and its helper) inside templates/crgate.yml.
python3 "$here/embed.py"
