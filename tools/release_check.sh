#!/usr/bin/env bash
# Builds crgate's and the emulator's release files as the release workflow does and checks them:
#
#   tools/release_check.sh [OUT]      (default OUT: ./dist; needs the network to PyPI)
#
# In a throwaway venv with pinned build tools: `python -m build` makes an sdist and a wheel of each
# project (the wheel built from the sdist, so the sdist is complete), `twine check --strict` checks their
# metadata and that the README renders on PyPI, and a fresh venv installs the two wheels with their
# dependencies from the index and runs `crgate --version`, `crgate check --help` and a gate against the
# emulator (clean: exit 0, vulnerable: exit 1). The wheels' contents are checked by tests/test_packaging.py.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
out="$(realpath -m "${1:-$root/dist}")"
build_version="1.6.1"
twine_version="7.0.0"

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
python3 -m venv "$tmp/tools"
"$tmp/tools/bin/pip" install --quiet --disable-pip-version-check "build==$build_version" "twine==$twine_version"

rm -rf "$out" && mkdir -p "$out"
# Build from a clean copy of the tracked files: no build/, egg-info or caches of a working tree.
git -C "$root" archive --format=tar HEAD | tar -x -C "$tmp" --one-top-level=src-tree
for project in "$tmp/src-tree" "$tmp/src-tree/emulator"; do
  "$tmp/tools/bin/python" -m build --outdir "$out" "$project" > "$tmp/build.log" 2>&1 || { cat "$tmp/build.log"; exit 1; }
done
ls -1 "$out"
"$tmp/tools/bin/twine" check --strict "$out"/*

python3 -m venv "$tmp/fresh"
"$tmp/fresh/bin/pip" install --quiet --disable-pip-version-check "$out"/*.whl
cd "$tmp"
"$tmp/fresh/bin/crgate" --version
"$tmp/fresh/bin/crgate" check --help > /dev/null
"$tmp/fresh/bin/crgate" check --emulator --progress=none cr.yandex/crpdemo/app:clean > /dev/null
set +e
"$tmp/fresh/bin/crgate" check --emulator --progress=none cr.yandex/crpdemo/app:vulnerable > /dev/null
vulnerable=$?
set -e
if [ "$vulnerable" != 1 ]; then
  echo "release_check: the vulnerable demo image exited $vulnerable, not 1" >&2
  exit 1
fi
if "$tmp/fresh/bin/python" -c 'import yandexcloud' 2>/dev/null; then
  echo "release_check: installing the wheels pulled yandexcloud" >&2
  exit 1
fi
echo "release_check: ok ($(ls "$out" | wc -l) files in $out)"
