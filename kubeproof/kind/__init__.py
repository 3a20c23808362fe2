"""The kind lane: a Docker engine, a kind node image assembled on this machine, and the two clusters
the suite is proven against (see clusters.py)."""
