#!/usr/bin/env bash
# Installs crgate for the GitHub Action into an isolated venv, $RUNNER_TEMP/crgate-venv.
#
# CRGATE_VERSION (the action's `version` input) picks the source: empty = this action's own checkout
# ($GITHUB_ACTION_PATH); anything else = a pip requirement (crgate==X.Y.Z, a path, an archive URL). A venv
# that already holds this checkout's version is reused, so using the action twice in a job installs once.
set -euo pipefail

venv="${RUNNER_TEMP:?RUNNER_TEMP is not set}/crgate-venv"
source_spec="${CRGATE_VERSION:-}"
if [ -z "$source_spec" ]; then
  action_path="${GITHUB_ACTION_PATH:?GITHUB_ACTION_PATH is not set}"
  want="$(sed -n 's/^version = "\(.*\)"$/\1/p' "$action_path/pyproject.toml" | head -n 1)"
  spec="$action_path"
else
  want=""
  spec="$source_spec"
fi

if [ -n "$want" ] && [ -x "$venv/bin/crgate" ] && [ "$("$venv/bin/crgate" --version 2>/dev/null || true)" = "crgate $want" ]; then
  echo "crgate $want is already installed in $venv"
  exit 0
fi

python="${CRGATE_PYTHON:-python3}"
if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 10))' 2>/dev/null; then
  # CRGATE_PYTHON inside a workflow command: no byte outside printable ASCII, no '%' the runner would decode.
  shown="$(printf '%s' "$python" | LC_ALL=C tr -c '[:print:]' '?' | LC_ALL=C tr '%' '?' | LC_ALL=C cut -c1-200)"
  echo "::error title=crgate::crgate needs Python 3.10 or newer as '$shown' (add actions/setup-python before this step)"
  exit 2
fi
rm -rf "$venv"
"$python" -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check "$spec"
"$venv/bin/crgate" --version
