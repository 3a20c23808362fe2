#!/usr/bin/env bash
# Builds the peer tools bench/benchmark.py compares kubeproof with, from the Go module proxy, into
# ~/.cache/kubeproof/peers/ (never into this repository). A peer that does not build is reported with
# the exact command and error, and the benchmark records it as not built.
#
#   bash bench/peers.sh          # prints one line per peer; details in ~/.cache/kubeproof/peers/build.log
set -u
PEERS_DIR="${KUBEPROOF_PEERS_DIR:-$HOME/.cache/kubeproof/peers}"
mkdir -p "$PEERS_DIR"
export GOTOOLCHAIN=local GOBIN="$PEERS_DIR" GOFLAGS=-buildvcs=false
LOG="$PEERS_DIR/build.log"
: > "$LOG"

# name  binary  module@version (pinned, so every run compares the same tools)
PEERS=(
  "kube-score kube-score github.com/zegl/kube-score/cmd/kube-score@v1.20.0"
  "polaris polaris github.com/fairwindsops/polaris@v9.6.1"
  "kubescape kubescape github.com/kubescape/kubescape/v3@v3.0.40"
)

for entry in "${PEERS[@]}"; do
  read -r name binary module <<<"$entry"
  if [ -x "$PEERS_DIR/$binary" ]; then
    echo "$name: built ($PEERS_DIR/$binary)"
    continue
  fi
  command="go install $module"
  echo "== $command" >> "$LOG"
  if output=$(cd /tmp && timeout 900 $command 2>&1); then
    echo "$output" >> "$LOG"
    echo "$name: built ($PEERS_DIR/$binary)"
  else
    echo "$output" >> "$LOG"
    echo "$name: NOT BUILT: $command: $(echo "$output" | grep -v '^go: downloading' | tail -2 | tr '\n' ' ')"
  fi
done
