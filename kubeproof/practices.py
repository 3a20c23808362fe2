"""The practices kubeproof proves and the frameworks its control ids come from. Test modules mark
themselves with one practice; tests carry framework markers with control ids."""

PRACTICES = {
    "etcd_encryption": "etcd encryption at rest",
    "anonymous_access": "API server anonymous access",
    "rbac": "RBAC least privilege",
    "pod_security": "Pod Security Standards",
    "network_policy": "NetworkPolicy default-deny",
    "control_plane": "Control-plane configuration",
    "secrets": "Secrets handling",
    "images": "Image provenance",
    "isolation": "Workload isolation",
    "audit_logging": "Audit logging",
    "version_currency": "Version currency",
    "monitoring": "Runtime monitoring agents",
    "service_mesh": "Service-mesh mTLS",
    "network": "Network enforcement",
    "baseline_waivers": "Baseline waivers",
    "manifests": "Configuration repository accepted by the API server",
    "kubelet": "Kubelet configuration (worker nodes)",
    "node_files": "Node file permissions and ownership",
    "kube_proxy": "kube-proxy configuration",
}

FRAMEWORKS = {
    "cis": "CIS Kubernetes Benchmark 1.12 control id(s)",
    "nsa": "NSA/CISA Kubernetes Hardening Guide section(s)",
    "pss": "Pod Security Standards check id(s)",
}
