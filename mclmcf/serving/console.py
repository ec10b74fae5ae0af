"""The server console: one line per refused request, and the native libraries' chatter filtered out.

mediapipe's TFLite and absl C++ logging ("Feedback manager requires a model with a single signature
...", one line per face-mesh graph and thread) writes straight to file descriptor 2 before
``absl::InitializeLog()``: neither GLOG_minloglevel, TF_CPP_MIN_LOG_LEVEL nor Python's absl.logging
reaches it (checked with mediapipe 0.10.14). ``filter_native_stderr`` puts a pipe on fd 2 and copies
every other line through to the real stderr, so Python tracebacks of real faults still show. The copier
never leaves the pipe full: a line the real stderr refuses is dropped, and if the copier stops for any other
reason fd 2 goes back to the real stderr (unfiltered), so no thread that logs ever blocks on the pipe.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import re
import sys
import threading

NATIVE_NOISE = re.compile(rb"inference_feedback_manager\.cc|Created TensorFlow Lite XNNPACK delegate|"
                          rb"All log messages before absl::InitializeLog\(\) is called")


def filter_native_stderr(noise: re.Pattern = NATIVE_NOISE) -> None:
    """Drop lines matching ``noise`` from everything written to fd 2 by this process, native code included."""
    real = os.dup(2)
    read, write = os.pipe()
    os.dup2(write, 2)
    os.close(write)

    def copy() -> None:
        with os.fdopen(read, "rb") as lines:
            try:
                for line in lines:
                    if not noise.search(line):
                        with contextlib.suppress(OSError):   # the real stderr is gone: drop the line, keep draining
                            os.write(real, line)
            finally:   # the copier is ending: fd 2 goes back to the real stderr before the pipe closes
                with contextlib.suppress(OSError):
                    os.dup2(real, 2)

    thread = threading.Thread(target=copy, name="stderr-filter", daemon=True)
    thread.start()

    def restore() -> None:   # at exit: give fd 2 back so the pipe drains, then let the copier finish
        sys.stderr.flush()
        os.dup2(real, 2)
        thread.join(timeout=2)

    atexit.register(restore)


# control characters (a terminal's escape codes, line breaks that would forge a log line) and the bidirectional
# overrides that reorder what a terminal shows
UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def printable(text: str) -> str:
    """``text`` with every control character written as its escape (ESC as \\x1b): what a visitor sent reaches
    the console as text, never as a command to the terminal."""
    return UNPRINTABLE.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)


class PrintableMessages(logging.Filter):
    """Escape the control characters of every log message (a traceback, added after the message, keeps its lines)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg, record.args = printable(record.getMessage()), None
        return True


def setup_logging() -> logging.Logger:
    """Timestamped lines on stderr: the app's own at INFO, other libraries' (httpx's request log) from WARNING;
    every message printable (:func:`printable`)."""
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s", force=True)
    for handler in logging.getLogger().handlers:
        handler.addFilter(PrintableMessages())
    log = logging.getLogger("mclmcf.app")
    log.setLevel(logging.INFO)
    return log


def one_line(message: str) -> str:
    """``message`` on one line, control characters escaped."""
    return printable(" ".join(str(message).split()))
