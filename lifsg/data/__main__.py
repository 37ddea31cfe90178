"""Command line: ``python -m lifsg.data fetch mnist [--data-dir DIR]``."""

import argparse
import sys

from .common import DataError
from .fashion_mnist import fetch_fashion_mnist
from .flowers import fetch_flowers
from .mnist import fetch_mnist

# One line per data set: name -> fetch(data_dir); the default folder is data/<name>.
FETCHERS = {
    "mnist": fetch_mnist,
    "flowers": fetch_flowers,
    "fashion_mnist": fetch_fashion_mnist,
}


def build_parser():
    """The argparse parser with the ``fetch`` subcommand."""
    parser = argparse.ArgumentParser(prog="python -m lifsg.data", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    fetch = commands.add_parser("fetch", help="download and verify a data set")
    fetch.add_argument("dataset", choices=sorted(FETCHERS), help="data set to fetch")
    fetch.add_argument("--data-dir", help="target folder (default: data/<dataset>)")
    return parser


def main(argv=None):
    """Run the CLI; returns the exit status (1 on DataError)."""
    args = build_parser().parse_args(argv)
    try:
        FETCHERS[args.dataset](args.data_dir or f"data/{args.dataset}")
    except DataError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
