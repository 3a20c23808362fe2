#!/usr/bin/env bash
# Creates the hardened kind cluster: a fresh AES key for secrets at rest, `kind create cluster`, then
# what kubeadm leaves open on a new cluster (see the end of this file).
# The cluster is named "hardened" (context kind-hardened) unless KIND_CLUSTER_NAME says otherwise;
# further arguments go to `kind create cluster` (for example --image for a node image of your own).
set -euo pipefail
cd "$(dirname "$0")"
name=${KIND_CLUSTER_NAME:-hardened}
context="kind-$name"
node="$name-control-plane"
umask 077
mkdir -p generated
cp authentication.yaml audit-policy.yaml admission.yaml generated/
key=$(head -c 32 /dev/urandom | base64)
sed "s|KEY_PLACEHOLDER|${key}|" encryption.yaml.template > generated/encryption.yaml.new
mv generated/encryption.yaml.new generated/encryption.yaml
# The API server in the node reads these through a bind mount; only the key must stay private.
chmod 755 generated && chmod 644 generated/authentication.yaml generated/audit-policy.yaml generated/admission.yaml
kind create cluster --name "$name" --config kind-hardened.yaml "$@"

# The kubelet asks for a serving certificate from the cluster CA (serverTLSBootstrap); nothing in
# the cluster approves those requests on its own, so approve this node's now.
csrs=
for _ in $(seq 60); do
  csrs=$(kubectl --context "$context" get csr -o jsonpath='{range .items[?(@.spec.signerName=="kubernetes.io/kubelet-serving")]}{.metadata.name}{"\n"}{end}')
  [ -n "$csrs" ] && break
  sleep 1
done
if [ -n "$csrs" ]; then
  kubectl --context "$context" certificate approve $csrs
else
  echo "create.sh: no kubelet serving certificate request appeared within 60 s; kubectl logs and exec will fail" >&2
fi

# Namespaces: Pod Security enforced, traffic denied unless allowed, no API token for pods that do
# not ask for one. kube-system keeps the privileged level its host agents need; there CoreDNS may
# still answer queries and reach the API server and upstream resolvers.
for ns in default kube-public kube-node-lease; do
  kubectl --context "$context" label namespace "$ns" --overwrite pod-security.kubernetes.io/enforce=restricted
done
for ns in default kube-public kube-node-lease kube-system; do
  kubectl --context "$context" -n "$ns" apply -f - <<'POLICY'
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: default-deny}
spec: {podSelector: {}, policyTypes: [Ingress, Egress]}
POLICY
  # The controller-manager makes each namespace's default ServiceAccount shortly after it starts.
  for _ in $(seq 60); do
    kubectl --context "$context" -n "$ns" get serviceaccount default >/dev/null 2>&1 && break
    sleep 1
  done
  kubectl --context "$context" -n "$ns" patch serviceaccount default -p '{"automountServiceAccountToken": false}'
done
kubectl --context "$context" -n kube-system apply -f - <<'POLICY'
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: coredns}
spec:
  podSelector: {matchLabels: {k8s-app: kube-dns}}
  policyTypes: [Ingress, Egress]
  ingress:
    - ports: [{protocol: UDP, port: 53}, {protocol: TCP, port: 53}, {protocol: TCP, port: 9153}]
  egress:
    - {}
POLICY
# The default namespace gets a quota and default limits, so nothing placed there can take the node.
kubectl --context "$context" -n default apply -f - <<'LIMITS'
apiVersion: v1
kind: ResourceQuota
metadata: {name: default-quota}
spec:
  hard: {pods: "20", requests.cpu: "2", requests.memory: 2Gi, limits.cpu: "4", limits.memory: 4Gi}
---
apiVersion: v1
kind: LimitRange
metadata: {name: default-limits}
spec:
  limits:
    - type: Container
      default: {cpu: 500m, memory: 256Mi}
      defaultRequest: {cpu: 100m, memory: 64Mi}
LIMITS
# kubeadm lets anonymous users read kube-public/cluster-info so that new nodes can find the cluster;
# once every node has joined, that read is no longer needed.
kubectl --context "$context" -n kube-public delete rolebinding kubeadm:bootstrap-signer-clusterinfo --ignore-not-found
# Files on the node that kubeadm and the image leave readable by all (CIS 1.1.9, 4.1.1, 4.1.9).
docker exec "$node" sh -c 'chmod 600 /etc/cni/net.d/* /var/lib/kubelet/config.yaml /etc/systemd/system/kubelet.service /etc/systemd/system/kubelet.service.d/*'
