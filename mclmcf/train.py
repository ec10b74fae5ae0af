"""`python -m mclmcf.train` and `mclmcf-train`: train MCL-MCF on a dataset. The code lives in mclmcf.training.cli."""

import sys

from mclmcf.training.cli import main


def cli() -> None:
    sys.exit(main())


if __name__ == "__main__":
    cli()
