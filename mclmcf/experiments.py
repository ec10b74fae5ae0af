"""`python -m mclmcf.experiments` and `mclmcf-experiments`: the paper's experiments (seeds, ablations). The code lives in mclmcf.training.experiments."""

from mclmcf.training.experiments import main


def cli() -> None:
    main()


if __name__ == "__main__":
    cli()
