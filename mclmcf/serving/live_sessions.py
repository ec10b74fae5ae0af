"""Who may stream live at once: the slots of live mode, one session per browser tab (mclmcf.serving.live).

    sessions = LiveSessions(max_sessions=1)
    session = sessions.acquire("browser-tab-id", pipeline)   # None: every slot is taken ("busy")

Sessions are capped at once and opened only on audio (a camera alone never holds a slot); one is dropped when its
stream ends, its tab closes, or it has sent nothing for ``idle_s``, ended ``max_session_s`` after its slot was
granted (the server's clock, whatever id the client sends), and a freed slot goes to the tab that has waited longest.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field

from mclmcf.serving.live import LiveConfig, LiveSession
from mclmcf.serving.pipeline import SentimentPipeline

log = logging.getLogger("mclmcf.app.live")


class LiveSessionEnded(ValueError):
    """The tab's live time is used up; the message is written for the visitor."""


@dataclass
class LiveSessions:
    """The open sessions, by browser tab; at most ``max_sessions`` at once (each one scores about once a
    second, with speech recognition on all the cores it gets), an idle one (no audio for ``idle_s``) gives way.

    The tab id (Gradio's session hash) is chosen by the client, so nothing rests on it: a session's time is
    counted on the server's clock from the moment its slot was granted, and it ends ``max_session_s`` later
    (that tab is then told so until it is forgotten). A slot that frees goes to the tab that has waited longest
    (asked and was told "busy" within the last ``wait_s``), not to whoever asks first, so a client that opens a
    new tab id when its time is up queues behind everyone who was already waiting."""
    max_sessions: int = 1
    idle_s: float = 15.0
    max_session_s: float = 600.0
    wait_s: float = 5.0
    config: LiveConfig = field(default_factory=LiveConfig)
    _open: dict[str, LiveSession] = field(default_factory=dict)
    _granted: dict[str, float] = field(default_factory=dict)   # tab -> when its slot was granted (monotonic)
    _ended: dict[str, float] = field(default_factory=dict)     # tab -> when its time ran out
    _waiting: dict[str, list[float]] = field(default_factory=dict)   # tab -> [first asked, last asked], oldest first
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def acquire(self, key: str, pipeline: SentimentPipeline) -> LiveSession | None:
        """The tab's session (the microphone's stream), opened if a slot is free (or held by an idle session)
        and no tab has waited longer; None when busy. Raises LiveSessionEnded once the tab's time is used up."""
        with self._lock:
            now = time.monotonic()
            self._expire(now)
            if key in self._ended:
                raise LiveSessionEnded(f"Live mode lasts at most {self.max_session_s / 60:g} minutes per visit and "
                                       "this one has used them. Reload the page to start again.")
            if key in self._open:
                return self._open[key]
            asked = self._waiting.setdefault(key, [now, now])
            asked[1] = now
            first_in_line = next(iter(self._waiting)) == key
            if len(self._open) >= self.max_sessions or not first_in_line:
                return None
            del self._waiting[key]
            self._granted[key] = now
            self._open[key] = LiveSession(pipeline, self.config)
            log.info("live session opened (%d of %d open)", len(self._open), self.max_sessions)
            return self._open[key]

    def _expire(self, now: float) -> None:
        """Close sessions past their time or idle, forget waiting tabs that stopped asking and old endings."""
        for k in [k for k, t in self._granted.items() if now - t > self.max_session_s]:
            self._close(k, "live session ended after %.0f s" % self.max_session_s)
            self._ended[k] = now
        for k in [k for k, s in self._open.items() if now - s.last_input > self.idle_s]:
            self._close(k, "idle live session dropped")
        self._waiting = {k: t for k, t in self._waiting.items() if now - t[1] <= self.wait_s}
        self._ended = {k: t for k, t in self._ended.items() if now - t <= self.max_session_s}

    def _close(self, key: str, why: str) -> None:
        self._granted.pop(key, None)
        if self._open.pop(key, None) is not None:
            log.info("%s (%d of %d open)", why, len(self._open), self.max_sessions)

    def get(self, key: str) -> LiveSession | None:
        """The tab's open session, if it has one: webcam frames join a session, they never open one."""
        with self._lock:
            return self._open.get(key)

    def release(self, key: str) -> None:
        """Drop the tab's session (its stream ended or the tab closed); nothing stays behind."""
        with self._lock:
            self._waiting.pop(key, None)
            self._close(key, "live session closed")

    def __len__(self) -> int:
        with self._lock:
            return len(self._open)
