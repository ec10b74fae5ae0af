"""`python -m mclmcf.predict` and `mclmcf-predict`: score clips listed in a labels file and write predictions. The code lives in mclmcf.serving.batch."""

from mclmcf.serving.batch import main


def cli() -> None:
    main()


if __name__ == "__main__":
    cli()
