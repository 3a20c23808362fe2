#!/usr/bin/env bash
# Creates the hardened kind cluster: a fresh AES key for secrets at rest, then `kind create cluster`.
# The cluster is named "hardened" (context kind-hardened) unless KIND_CLUSTER_NAME says otherwise;
# further arguments go to `kind create cluster` (for example --image for a node image of your own).
set -euo pipefail
cd "$(dirname "$0")"
name=${KIND_CLUSTER_NAME:-hardened}
umask 077
mkdir -p generated
cp authentication.yaml audit-policy.yaml generated/
key=$(head -c 32 /dev/urandom | base64)
sed "s|KEY_PLACEHOLDER|${key}|" encryption.yaml.template > generated/encryption.yaml.new
mv generated/encryption.yaml.new generated/encryption.yaml
# The API server in the node reads these through a bind mount; only the key must stay private.
chmod 755 generated && chmod 644 generated/authentication.yaml generated/audit-policy.yaml
kind create cluster --name "$name" --config kind-hardened.yaml "$@"
# The kubelet asks for a serving certificate from the cluster CA (serverTLSBootstrap); nothing in
# the cluster approves those requests on its own, so approve this node's now.
for _ in $(seq 60); do
  csrs=$(kubectl --context "kind-$name" get csr -o jsonpath='{range .items[?(@.spec.signerName=="kubernetes.io/kubelet-serving")]}{.metadata.name}{"\n"}{end}')
  [ -n "$csrs" ] && break
  sleep 1
done
if [ -n "$csrs" ]; then
  kubectl --context "kind-$name" certificate approve $csrs
else
  echo "create.sh: no kubelet serving certificate request appeared within 60 s; kubectl logs and exec will fail" >&2
fi
# New namespaces still need labels and policies; label the built-in ones so the audit starts green.
for ns in default kube-public kube-node-lease; do
  kubectl --context "kind-$name" label namespace "$ns" --overwrite pod-security.kubernetes.io/enforce=restricted
  kubectl --context "kind-$name" -n "$ns" apply -f - <<'POLICY'
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: default-deny}
spec: {podSelector: {}, policyTypes: [Ingress, Egress]}
POLICY
done
