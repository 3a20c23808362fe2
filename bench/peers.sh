#!/usr/bin/env bash
# Builds the peer tools bench/benchmark.py compares kubeproof with, from the Go module proxy, into
# ~/.cache/kubeproof/peers/ (never into this repository). A peer that does not build is reported with
# the exact command and error, and the benchmark records it as not built.
#
#   bash bench/peers.sh          # prints one line per peer; details in ~/.cache/kubeproof/peers/build.log
#
# Measured here (2026-11-25): kube-score v1.20.0 and Trivy v0.74.0 build. Polaris and kubescape do
# not: the proxy this machine reaches answers 403 "This module version is not available" for every
# version of github.com/fairwindsops/polaris and github.com/kubescape/kubescape/v3 (also @latest).
set -u
PEERS_DIR="${KUBEPROOF_PEERS_DIR:-$HOME/.cache/kubeproof/peers}"
mkdir -p "$PEERS_DIR"
export GOTOOLCHAIN=local GOBIN="$PEERS_DIR" GOFLAGS=-buildvcs=false
LOG="$PEERS_DIR/build.log"
: > "$LOG"

# name  binary  module@version (pinned, so every run compares the same tools)  extra environment
PEERS=(
  "kube-score kube-score github.com/zegl/kube-score/cmd/kube-score@v1.20.0 -"
  # Trivy imports encoding/json/v2, which Go 1.26 builds only as an experiment.
  "trivy trivy github.com/aquasecurity/trivy/cmd/trivy@v0.74.0 GOEXPERIMENT=jsonv2"
  "polaris polaris github.com/fairwindsops/polaris@v9.6.1 -"
  "kubescape kubescape github.com/kubescape/kubescape/v3@v3.0.40 -"
)

for entry in "${PEERS[@]}"; do
  read -r name binary module environment <<<"$entry"
  if [ -x "$PEERS_DIR/$binary" ]; then
    echo "$name: built ($PEERS_DIR/$binary)"
    continue
  fi
  [ "$environment" = "-" ] && environment=""
  command="go install $module"
  echo "== ${environment:+$environment }$command" >> "$LOG"
  if output=$(cd /tmp && env $environment timeout 1800 $command 2>&1); then
    echo "$output" >> "$LOG"
    echo "$name: built ($PEERS_DIR/$binary)"
  else
    echo "$output" >> "$LOG"
    echo "$name: NOT BUILT: ${environment:+$environment }$command: $(echo "$output" | grep -v '^go: downloading' | tail -2 | tr '\n' ' ')"
  fi
done
