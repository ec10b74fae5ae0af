"""The start-up heartbeat: while the app starts, a line at least every few seconds, naming the last step."""

from __future__ import annotations

import io
import logging
import time

from mclmcf.serving.startup import Heartbeat


def lines_after(stream: io.StringIO, n: int, timeout_s: float = 10.0) -> list[str]:
    """The stream's lines once there are more than ``n`` (or what there is after ``timeout_s``)."""
    deadline = time.monotonic() + timeout_s
    while len(stream.getvalue().splitlines()) <= n and time.monotonic() < deadline:
        time.sleep(0.02)
    return stream.getvalue().splitlines()


def test_heartbeat_names_the_last_step_while_silent_and_stops():
    stream = io.StringIO()
    beat = Heartbeat("starting ...", "importing", every_s=0.1, stream=stream)
    try:
        assert lines_after(stream, 1)[:2] == ["starting ...", '  ... still working, 0 s after "importing"']
        logging.getLogger("mclmcf.app").warning("2/4 loading the weights ...")
        n = len(stream.getvalue().splitlines())
        assert lines_after(stream, n)[n].startswith('  ... still working, 0 s after "2/4 loading the weights"')
    finally:
        beat.stop()
    assert beat not in logging.getLogger("mclmcf").handlers
    n = len(stream.getvalue().splitlines())
    time.sleep(0.5)                               # five periods: a running heartbeat would have printed
    assert len(stream.getvalue().splitlines()) == n
