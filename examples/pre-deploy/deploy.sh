#!/bin/sh
# A plain deploy script with crgate's pre-deploy hook: render once, gate what was rendered, pin every
# gated image to the digest crgate gated, apply exactly the pinned file. Nothing is applied when an
# image violates the policy or cannot be checked; a tag that moves after the gate changes nothing.
#
#   YC_IAM_TOKEN=$(yc iam create-token) ./deploy.sh
set -eu
here="$(cd "$(dirname "$0")" && pwd)"
hook="${CRGATE_HOOK:-$here/../../action/hooks/pre-deploy}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# With Helm: helm template web ./chart --values values.prod.yaml > "$work/rendered.yaml"
cat "$here"/k8s/*.yaml > "$work/rendered.yaml"

CRGATE_PIN_TO="$work/pinned.yaml" "$hook" "$work/rendered.yaml"
kubectl apply -f "$work/pinned.yaml"
