#!/usr/bin/env bash
# Installs crgate for the GitHub Action into an isolated venv, $RUNNER_TEMP/crgate-venv, once per cache key.
#
#   install.sh plan      writes the step outputs key, venv and ready (true: the venv already holds this key)
#   install.sh install   installs unless the venv holds this key already; output installed=true if it did
#
# The key names everything the venv's content depends on: crgate's version (or the `version` input's
# pip requirement), the runner's OS and architecture, the Python implementation, version and executable,
# and the hash of action/requirements.lock. action.yml restores the venv by this key (actions/cache) before
# `install` and saves it right after a fresh install, before the gate runs, so a failing gate still
# leaves the cache for the next run. A venv is only trusted when its stamp file holds the same key and
# its crgate imports the scanner's stubs; anything else is removed and installed again.
#
# The install itself: the lock (every dependency pinned, every file hashed) with --no-deps
# --require-hashes, then crgate with --no-deps --no-build-isolation (the lock pins the build backend too),
# so nothing outside the lock is installed. --no-compile skips byte-compiling what crgate never imports
# (most of cryptography's and protobuf's Python); the smoke import below compiles the modules crgate uses,
# its own generated stubs included, before the save.
#
# CRGATE_VERSION (the action's `version` input): empty = this action's own checkout ($GITHUB_ACTION_PATH);
# anything else = a pip requirement (crgate==X.Y.Z, a path, an archive URL), installed against the same lock.
# CRGATE_EMULATOR (the action's `emulator` input): true = also the emulator, a distribution of its own
# (crgate-emulator, from this action's checkout: $GITHUB_ACTION_PATH/emulator); anything else = crgate alone.
# CRGATE_PYTHON: the interpreter (default python3).
set -euo pipefail

mode="${1:-install}"
venv="${RUNNER_TEMP:?RUNNER_TEMP is not set}/crgate-venv"
action_path="${GITHUB_ACTION_PATH:?GITHUB_ACTION_PATH is not set}"
lock="$action_path/action/requirements.lock"
stamp="$venv/crgate-install.key"
python="${CRGATE_PYTHON:-python3}"

# A value inside a workflow command: no byte outside printable ASCII, no '%' the runner would decode.
printable() {
  printf '%s' "$1" | LC_ALL=C tr -c '[:print:]' '?' | LC_ALL=C tr '%' '?' | LC_ALL=C cut -c1-200
}

if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 10))' 2>/dev/null; then
  echo "::error title=crgate::crgate needs Python 3.10 or newer as '$(printable "$python")' (add actions/setup-python before this step)"
  exit 2
fi

source_spec="${CRGATE_VERSION:-}"
emulator=false
if [ "${CRGATE_EMULATOR:-}" = "true" ]; then emulator=true; fi
if [ -z "$source_spec" ]; then
  want="$(sed -n 's/^__version__ = "\(.*\)"$/\1/p' "$action_path/src/crgate/__init__.py" | head -n 1)"
  spec="$action_path"
else
  want=""
  spec="$source_spec"
fi

# The cache key (actions/cache allows up to 512 characters; this stays near 100).
key="$("$python" - "$lock" "$want" "$spec" "${RUNNER_OS:-unknown}" "${RUNNER_ARCH:-unknown}" "$emulator" <<'EOF'
import hashlib, os, platform, sys
lock, want, spec, runner_os, runner_arch, emulator = sys.argv[1:]
def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:16]
with open(lock, "rb") as handle:
    locked = digest(handle.read())
source = want if want else "spec-" + digest(spec.encode())
interpreter = platform.python_implementation().lower() + platform.python_version()
executable = digest(os.path.realpath(sys.executable).encode())[:8]
extra = "-emulator" if emulator == "true" else ""
print(f"crgate-venv-v1-{runner_os}-{runner_arch}-{interpreter}-{executable}-{source}{extra}-lock{locked}")
EOF
)"

# What is installed and what a usable venv imports: crgate with the scanner's stubs, and the emulator
# when it is asked for (a venv without it has another key, so it is never taken for one with it).
packages=("$spec")
usable="import crgate.scanner.client"
smoke="import crgate.cli, crgate.scanner.client, crgate.doctor"
if [ "$emulator" = true ]; then
  packages+=("$action_path/emulator")
  usable="$usable, crgate_emulator"
  smoke="$smoke, crgate_emulator.server"
fi

ready() {
  [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$key" ] && [ -x "$venv/bin/crgate" ] \
    && "$venv/bin/python" -c "$usable" 2>/dev/null \
    && { [ -z "$want" ] || [ "$("$venv/bin/crgate" --version 2>/dev/null || true)" = "crgate $want" ]; }
}

case "$mode" in
  plan)
    state=false
    if ready; then state=true; fi
    {
      echo "key=$key"
      echo "venv=$venv"
      echo "ready=$state"
    } >> "${GITHUB_OUTPUT:?GITHUB_OUTPUT is not set}"
    exit 0
    ;;
  install) ;;
  *)
    echo "install.sh: unknown mode '$(printable "$mode")' (plan or install)" >&2
    exit 2
    ;;
esac

if ready; then
  echo "crgate $("$venv/bin/crgate" --version | sed 's/^crgate //') is already installed in $venv"
  echo "installed=false" >> "${GITHUB_OUTPUT:-/dev/null}"
  exit 0
fi

rm -rf "$venv"
"$python" -m venv "$venv"
pip=("$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-compile --no-deps)
"${pip[@]}" --require-hashes --requirement "$lock"
"${pip[@]}" --no-build-isolation "${packages[@]}"
# The smoke test: crgate starts and imports the generated stubs (and byte-compiles what it imports).
"$venv/bin/crgate" --version
"$venv/bin/python" -c "$smoke"
printf '%s\n' "$key" > "$stamp"
echo "installed=true" >> "${GITHUB_OUTPUT:-/dev/null}"
