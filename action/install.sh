#!/usr/bin/env bash
# Installs crgate for the GitHub Action into a venv this step makes, every time; what is cached is only
# the lock's wheels, and pip checks every one of them against the lock's hashes.
#
#   install.sh plan      writes the step outputs key and wheels (the wheel cache's key and directory)
#   install.sh install   makes a fresh venv, installs into it, writes the outputs venv and downloaded
#
# Why never a venv that is already there: the Actions cache is not a trusted store (a pull request's own
# workflow may save an entry under this very key in its ref's scope, which a later run of the gate for
# that pull request restores first), and a path under $RUNNER_TEMP may have been written by an earlier
# step. So the venv is a new `mktemp -d` directory (a name nobody could have prepared), and the wheels,
# restored from the cache or downloaded, are installed with --require-hashes --no-deps from
# action/requirements.lock (the one lock the GitLab component embeds too): a wheel whose hash is not in
# the lock is refused (the cache is dropped and the lock downloaded again, with a warning), never run.
# crgate itself comes from this action's own checkout (or the `version` input's pip requirement).
#
# The cache key names what the wheels depend on: the runner's OS and architecture, the Python
# implementation and version, and the lock's hash. --no-compile skips byte-compiling what crgate never
# imports (most of cryptography's and protobuf's Python); the smoke import compiles the modules crgate
# uses, its own generated stubs included.
#
# CRGATE_VERSION (the action's `version` input): empty = this action's own checkout ($GITHUB_ACTION_PATH);
# anything else = a pip requirement (crgate==X.Y.Z, a path, an archive URL), installed against the same lock.
# CRGATE_EMULATOR (the action's `emulator` input): true = also the emulator, a distribution of its own
# (crgate-emulator, from this action's checkout: $GITHUB_ACTION_PATH/emulator); anything else = crgate alone.
# CRGATE_PYTHON: the interpreter (default python3).
set -euo pipefail

mode="${1:-install}"
runner_temp="${RUNNER_TEMP:?RUNNER_TEMP is not set}"
wheels="$runner_temp/crgate-wheels"
action_path="${GITHUB_ACTION_PATH:?GITHUB_ACTION_PATH is not set}"
lock="$action_path/action/requirements.lock"
python="${CRGATE_PYTHON:-python3}"

# A value inside a workflow command: no byte outside printable ASCII, no '%' the runner would decode.
printable() {
  printf '%s' "$1" | LC_ALL=C tr -c '[:print:]' '?' | LC_ALL=C tr '%' '?' | LC_ALL=C cut -c1-200
}

if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 10))' 2>/dev/null; then
  echo "::error title=crgate::crgate needs Python 3.10 or newer as '$(printable "$python")' (add actions/setup-python before this step)"
  exit 2
fi

case "$mode" in
  plan)
    # The cache key (actions/cache allows up to 512 characters; this stays near 80).
    key="$("$python" -I - "$lock" "${RUNNER_OS:-unknown}" "${RUNNER_ARCH:-unknown}" <<'EOF'
import hashlib, platform, sys
lock, runner_os, runner_arch = sys.argv[1:]
with open(lock, "rb") as handle:
    locked = hashlib.sha256(handle.read()).hexdigest()[:16]
interpreter = platform.python_implementation().lower() + ".".join(platform.python_version_tuple()[:2])
print(f"crgate-wheels-v2-{runner_os}-{runner_arch}-{interpreter}-lock{locked}")
EOF
)"
    {
      echo "key=$key"
      echo "wheels=$wheels"
    } >> "${GITHUB_OUTPUT:?GITHUB_OUTPUT is not set}"
    exit 0
    ;;
  install) ;;
  *)
    echo "install.sh: unknown mode '$(printable "$mode")' (plan or install)" >&2
    exit 2
    ;;
esac

spec="${CRGATE_VERSION:-$action_path}"
# What goes into the venv besides the lock: crgate, and the emulator only for an emulated run (a venv
# without it answers --emulator with exit 2 naming what to install).
packages=("$spec")
smoke="import crgate.cli, crgate.scanner.client, crgate.doctor"
if [ "${CRGATE_EMULATOR:-}" = "true" ]; then
  packages+=("$action_path/emulator")
  smoke="$smoke, crgate_emulator.server"
fi
venv="$(mktemp -d "$runner_temp/crgate-venv.XXXXXXXXXX")"
"$python" -I -m venv "$venv"
pip=("$venv/bin/python" -I -m pip install --quiet --disable-pip-version-check --no-compile --no-deps)
locked=("${pip[@]}" --require-hashes --no-index --find-links "$wheels" --requirement "$lock")

downloaded=false
if [ ! -d "$wheels" ]; then
  echo "no cached wheels: downloading action/requirements.lock"
  downloaded=true
elif ! "${locked[@]}"; then
  echo "::warning title=crgate::the cached wheels do not match action/requirements.lock's hashes (pip's message above): none of them was used, the lock is downloaded again"
  downloaded=true
fi
if [ "$downloaded" = true ]; then
  rm -rf "$wheels" "$venv"
  "$python" -I -m venv "$venv"
  "$venv/bin/python" -I -m pip download --quiet --disable-pip-version-check --no-deps --require-hashes \
    --requirement "$lock" --dest "$wheels"
  "${locked[@]}"
fi
"${pip[@]}" --no-build-isolation "${packages[@]}"
# The smoke test: crgate starts and imports the generated stubs (and byte-compiles what it imports).
"$venv/bin/python" -I "$venv/bin/crgate" --version
"$venv/bin/python" -I -c "$smoke"
{
  echo "venv=$venv"
  echo "downloaded=$downloaded"
} >> "${GITHUB_OUTPUT:-/dev/null}"
