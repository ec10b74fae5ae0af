"""`python -m mclmcf.predict` and `mclmcf-predict`: score clips named on the command line, or listed in a labels file,
and print or write the predictions. The code lives in mclmcf.serving.batch."""

from mclmcf.serving.batch import main
from mclmcf.serving.console import filter_native_stderr


def cli() -> None:
    filter_native_stderr()      # mediapipe's native log lines, as the app drops them
    main()


if __name__ == "__main__":
    cli()
