"""Command line for the embedded control plane.

    python -m kubeproof.controlplane build              build (or find) the pinned binaries
    python -m kubeproof.controlplane up [--profile P]   start one, print its kubeconfig, run until Ctrl-C
    python -m kubeproof.controlplane spares start|stop|status
                                                        keep a cluster ready for the next --manifests run
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading

from kubeproof.controlplane import PROFILES, BuildError, ControlPlaneError, EmbeddedCluster, ensure_built, spares


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kubeproof.controlplane")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("build", help="build the pinned control-plane binaries into the per-user cache")
    up = commands.add_parser("up", help="start an embedded cluster and keep it running until interrupted")
    up.add_argument("--profile", choices=PROFILES, default="hardened")
    spare = commands.add_parser("spares", help="a supervisor that keeps a cluster ready for the next --manifests run")
    spare.add_argument("action", choices=("start", "stop", "status", "serve"),
                       help="start or stop the supervisor in the background; serve: run it in the foreground")
    spare.add_argument("--count", type=int, default=1, help="spares kept ready (each holds about 700 MB of memory)")
    spare.add_argument("--idle", type=float, default=spares.IDLE_SECONDS,
                       help="seconds without a claim after which the supervisor ends itself and its spares")
    args = parser.parse_args(argv)
    try:
        if args.command == "build":
            print(ensure_built().folder)
            return 0
        if args.command == "spares":
            return _spares(args)
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


def _spares(args) -> int:
    if args.count < 1 or args.idle <= 0:
        print("kubeproof: spares: --count must be at least 1 and --idle above 0", file=sys.stderr)
        return 2
    if args.action == "serve":
        return spares.Supervisor(spares.spares_root(), args.count, args.idle).serve()
    if args.action == "start":
        state = spares.start(args.count, args.idle)
        print(f"spares supervisor {state['pid']} keeps {state['count']} cluster(s) ready in {spares.spares_root()} "
              f"until {state['idle_seconds']:.0f} s pass without a --manifests run; "
              "`python -m kubeproof.controlplane spares stop` ends it")
        return 0
    if args.action == "stop":
        print("stopped" if spares.stop() else "no spares supervisor was running")
        return 0
    print(json.dumps(spares.status(), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
