#!/usr/bin/env bash
# Runs crgate for the GitHub Action. Inputs arrive only as environment variables (never as ${{ }} text
# in a script): CRGATE_IMAGES, CRGATE_POLICY, CRGATE_TIMEOUT, CRGATE_EMULATOR, CRGATE_SARIF_FILE,
# CRGATE_SARIF_LOCATION, and the credentials YC_IAM_TOKEN, YC_SERVICE_ACCOUNT_KEY_FILE, YC_SA_ID.
# Then writes the step's outputs, summary and annotations, and exits with crgate's own exit code.
set -uo pipefail

venv="${RUNNER_TEMP:?RUNNER_TEMP is not set}/crgate-venv"
out="$RUNNER_TEMP/crgate"
mkdir -p "$out"
report="$out/report.json"
summary="$out/summary.md"
rm -f "$report" "$summary"

args=(check --progress lines --timeout "${CRGATE_TIMEOUT:-900}" --output "json=$report" --output "markdown=$summary")
if [ -n "${CRGATE_POLICY:-}" ]; then args+=(--policy "$CRGATE_POLICY"); fi
if [ "${CRGATE_EMULATOR:-false}" = "true" ]; then args+=(--emulator); fi
if [ -n "${CRGATE_SARIF_FILE:-}" ]; then
  args+=(--output "sarif=$CRGATE_SARIF_FILE" --sarif-location "${CRGATE_SARIF_LOCATION:-Dockerfile}")
fi

# Images: separated by spaces or newlines; no glob expansion of what the user wrote.
set -f
# shellcheck disable=SC2206
images=(${CRGATE_IMAGES:-})
set +f

# Empty credential inputs must not shadow credentials set elsewhere (or look like a given, empty one).
for name in YC_IAM_TOKEN YC_SERVICE_ACCOUNT_KEY_FILE YC_SA_ID; do
  if [ -z "${!name:-}" ]; then unset "$name"; fi
done

"$venv/bin/crgate" "${args[@]}" -- "${images[@]}"
code=$?

# The helper sanitizes with this checkout's crgate.textsafe, whichever crgate the venv holds.
if ! PYTHONPATH="$GITHUB_ACTION_PATH/src${PYTHONPATH:+:$PYTHONPATH}" "$venv/bin/python" "$GITHUB_ACTION_PATH/action/github_outputs.py" \
  --report "$report" --summary "$summary" --exit-code "$code" --sarif-file "${CRGATE_SARIF_FILE:-}"; then
  echo "::error title=crgate::could not write the step's outputs"
  if [ "$code" -eq 0 ]; then code=3; fi  # fail closed: a pass nobody can see is not a pass
fi
exit "$code"
