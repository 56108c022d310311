#!/usr/bin/env bash
# Runs crgate for the GitHub action from environment variables only (never from ${{ }} text).
set -euo pipefail
args=(check --timeout "${CRGATE_TIMEOUT:-900}")
[ -n "${CRGATE_POLICY:-}" ] && args+=(--policy "$CRGATE_POLICY")
[ "${CRGATE_EMULATOR:-false}" = "true" ] && args+=(--emulator)
read -r -a images <<< "$(echo "${CRGATE_IMAGES:-}" | tr '\n' ' ')"
[ "${YC_IAM_TOKEN:-}" = "" ] && unset YC_IAM_TOKEN
exec "$RUNNER_TEMP/crgate-venv/bin/crgate" "${args[@]}" "${images[@]}"
