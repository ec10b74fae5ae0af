"""The console while the app starts: never silent for more than a few seconds.

Start-up takes 15-80 s depending on the machine's load (imports, the weights, the warm-up analysis), and some of
its steps print nothing for a long while. ``Heartbeat`` prints a line saying what is still running whenever
the app has printed nothing for ``every_s``; the step is the app's last log line. Imports nothing heavy: it is
created before the libraries are imported.
"""

from __future__ import annotations

import logging
import sys
import threading
import time


class Heartbeat(logging.Handler):
    """Prints ``first_line`` now, then, until :meth:`stop`, ``... still working, N s after "<step>"`` whenever
    neither it nor the ``mclmcf`` loggers have printed a line for ``every_s`` seconds."""

    def __init__(self, first_line: str, step: str, every_s: float = 3.0, stream=None):
        super().__init__(level=logging.INFO)
        self.every_s, self.stream = every_s, stream or sys.stderr
        self.step, self.since = step, time.monotonic()
        self.last_line = self.since
        self.stopped = threading.Event()
        print(first_line, file=self.stream, flush=True)
        logging.getLogger("mclmcf").addHandler(self)
        threading.Thread(target=self._beat, name="startup-heartbeat", daemon=True).start()

    def emit(self, record: logging.LogRecord) -> None:   # the app printed a line: it names the current step
        self.step, self.since = record.getMessage().rstrip(" ."), time.monotonic()
        self.last_line = self.since

    def _beat(self) -> None:
        while not self.stopped.wait(0.25):
            now = time.monotonic()
            if now - self.last_line >= self.every_s:
                print(f'  ... still working, {now - self.since:.0f} s after "{self.step}"', file=self.stream, flush=True)
                self.last_line = now

    def stop(self) -> None:
        self.stopped.set()
        logging.getLogger("mclmcf").removeHandler(self)
