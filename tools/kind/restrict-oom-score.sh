#!/bin/sh
# Run before containerd starts in a kubeproof kind node. Where the host withholds CAP_SYS_RESOURCE
# (some VMs and sandboxes), nothing in this node may lower an oom_score_adj, and runc refuses every pod
# sandbox that asks for one; containerd is then told to keep each container's score at or above its
# own. On a host that grants the capability the configuration is left as kind writes it.
set -eu
bounding=$(awk '/^CapBnd:/ {print $2}' /proc/self/status)
if [ $(( 0x$bounding >> 24 & 1 )) -eq 0 ]; then
  sed -i 's/restrict_oom_score_adj = false/restrict_oom_score_adj = true/' /etc/containerd/config.toml
fi
