"""kubeproof: a pytest suite that proves a Kubernetes cluster follows security best practices."""

__version__ = "0.1.0"
