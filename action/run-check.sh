#!/usr/bin/env bash
# Runs crgate for the GitHub Action. Inputs arrive only as environment variables (never as ${{ }} text
# in a script); action/check_command.py turns them into crgate's command line (no shell ever evaluates
# them) and runs it. Then action/github_outputs.py writes the step's outputs, summary and annotations,
# and this script exits with crgate's own exit code.
set -uo pipefail

# The venv the install step made for this run (its output, never a fixed path an earlier step could fill).
venv="${CRGATE_ACTION_VENV:?the install step named no venv}"
out="${RUNNER_TEMP:?RUNNER_TEMP is not set}/crgate"
mkdir -p "$out"
report="$out/report.json"
summary="$out/summary.md"
comment="$out/comment.md"
rm -f "$report" "$summary" "$comment"

# Empty credential inputs must not shadow credentials set elsewhere (or look like a given, empty one).
for name in YC_IAM_TOKEN YC_SERVICE_ACCOUNT_KEY_FILE YC_SA_ID; do
  if [ -z "${!name:-}" ]; then unset "$name"; fi
done

# The helpers use this checkout's crgate.textsafe (and reference parser), whichever crgate the venv
# holds; crgate itself runs from the venv (check_command.py execs it with the environment unchanged).
"$venv/bin/python" -I "$GITHUB_ACTION_PATH/action/check_command.py" \
  --crgate "$venv/bin/crgate" --report "$report" --summary "$summary" --comment "$comment"
code=$?

if ! PYTHONPATH="$GITHUB_ACTION_PATH/src${PYTHONPATH:+:$PYTHONPATH}" "$venv/bin/python" "$GITHUB_ACTION_PATH/action/github_outputs.py" \
  --report "$report" --summary "$summary" --comment "$comment" --exit-code "$code" --sarif-file "${CRGATE_SARIF_FILE:-}"; then
  echo "::error title=crgate::could not write the step's outputs"
  if [ "$code" -eq 0 ]; then code=3; fi  # fail closed: a pass nobody can see is not a pass
fi
exit "$code"
