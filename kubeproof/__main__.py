"""`python -m kubeproof diff RUN_A RUN_B`: what changed between two audits (kubeproof/diff.py).

Exit status: 0 nothing got worse, 1 something got worse (a new finding, or a control or practice
that moved towards failed or not verified), 2 bad input (the message names the argument)."""

from __future__ import annotations

import argparse
import sys

from kubeproof import diff


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="python -m kubeproof", description="kubeproof's commands beside the suite")
    commands = top.add_subparsers(dest="command", metavar="COMMAND", required=True)
    compare = commands.add_parser(
        "diff", help="what changed between two run folders",
        description="Compares two run folders (reports/<cluster>-<timestamp>/): new and fixed findings, and the "
        "controls and practices whose status changed.",
        epilog="Exit status: 0 nothing got worse; 1 something got worse (a new finding, or a control or practice "
        "moved towards failed or not verified: proved > waived > not verified = not covered > failed); 2 bad input.")
    compare.add_argument("run_a", metavar="RUN_A", help="the earlier run folder")
    compare.add_argument("run_b", metavar="RUN_B", help="the later run folder")
    compare.add_argument("--format", choices=diff.FORMATS, default="text", help="text (default), markdown or json")
    return top


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)  # a usage error exits 2, naming the argument
    try:
        before = diff.load_run(args.run_a, "RUN_A")
        after = diff.load_run(args.run_b, "RUN_B")
    except diff.BadRun as error:
        print(f"kubeproof diff: {error}", file=sys.stderr)
        return diff.EXIT_BAD_INPUT
    comparison = diff.compare(before, after)
    sys.stdout.write(diff.render(comparison, args.format))
    return comparison.exit_status


if __name__ == "__main__":
    sys.exit(main())
