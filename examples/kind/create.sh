#!/usr/bin/env bash
# Creates the hardened kind cluster: a fresh AES key for secrets at rest, then `kind create cluster`.
set -euo pipefail
cd "$(dirname "$0")"
mkdir -p generated
cp authentication.yaml audit-policy.yaml generated/
key=$(head -c 32 /dev/urandom | base64)
sed "s|KEY_PLACEHOLDER|${key}|" encryption.yaml.template > generated/encryption.yaml
chmod 600 generated/encryption.yaml
kind create cluster --config kind-hardened.yaml
# New namespaces still need labels and policies; label the built-in ones so the audit starts green.
for ns in default kube-public kube-node-lease; do
  kubectl --context kind-hardened label namespace "$ns" --overwrite pod-security.kubernetes.io/enforce=restricted
  kubectl --context kind-hardened -n "$ns" apply -f - <<'POLICY'
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: default-deny}
spec: {podSelector: {}, policyTypes: [Ingress, Egress]}
POLICY
done
