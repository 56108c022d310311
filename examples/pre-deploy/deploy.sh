#!/bin/sh
# A plain deploy script with crgate's pre-deploy hook: render once, gate what was rendered, apply exactly
# that. Nothing is applied when an image violates the policy or cannot be checked.
#
#   YC_IAM_TOKEN=$(yc iam create-token) ./deploy.sh
set -eu
here="$(cd "$(dirname "$0")" && pwd)"
hook="${CRGATE_HOOK:-$here/../../action/hooks/pre-deploy}"
rendered="$(mktemp)"
trap 'rm -f "$rendered"' EXIT

# With Helm: helm template web ./chart --values values.prod.yaml > "$rendered"
cat "$here"/k8s/*.yaml > "$rendered"

"$hook" "$rendered"
kubectl apply -f "$rendered"
