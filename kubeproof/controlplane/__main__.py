"""Command line for the embedded control plane.

    python -m kubeproof.controlplane build              build (or find) the pinned binaries
    python -m kubeproof.controlplane up [--profile P]   start one, print its kubeconfig, run until Ctrl-C
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading

from kubeproof.controlplane import PROFILES, BuildError, ControlPlaneError, EmbeddedCluster, ensure_built


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kubeproof.controlplane")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("build", help="build the pinned control-plane binaries into the per-user cache")
    up = commands.add_parser("up", help="start an embedded cluster and keep it running until interrupted")
    up.add_argument("--profile", choices=PROFILES, default="hardened")
    args = parser.parse_args(argv)
    try:
        if args.command == "build":
            print(ensure_built().folder)
            return 0
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        with EmbeddedCluster(profile=args.profile) as cluster:
            print(json.dumps(cluster.describe(), indent=2), flush=True)
            print(f"export KUBECONFIG={cluster.kubeconfig}   # Ctrl-C stops the cluster", flush=True)
            try:
                stop.wait()
            except KeyboardInterrupt:
                pass
        return 0
    except (BuildError, ControlPlaneError) as error:
        print(f"kubeproof: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
