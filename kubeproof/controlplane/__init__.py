"""The embedded, real Kubernetes control plane the suite starts on loopback."""

from kubeproof.controlplane.build import BuildError, ensure_built
from kubeproof.controlplane.embedded import PROFILES, ControlPlaneError, EmbeddedCluster

__all__ = ["BuildError", "ControlPlaneError", "EmbeddedCluster", "PROFILES", "ensure_built"]
