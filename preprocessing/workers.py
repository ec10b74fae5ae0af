"""Process pools for batch work (extraction, batch prediction) whose workers never outlive their parent.

A killed parent (kill -9, OOM killer) cannot tell its pool to stop, and a spawned worker blocked on
the task queue or busy with a clip would run on for minutes. Each worker therefore watches its
parent's pid from a daemon thread and exits at once when it changes (the orphan was re-parented).
"""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
from concurrent.futures import ProcessPoolExecutor

PARENT_POLL_S = 0.5


def worker_pool(workers: int, initializer=None, initargs: tuple = ()) -> ProcessPoolExecutor:
    """A spawn-context pool (mediapipe graphs and forked native threads do not mix) of ``workers``
    processes that exit when this process dies; ``initializer(*initargs)`` runs in each after that."""
    return ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                               initializer=_start_worker, initargs=(os.getpid(), initializer, initargs))


def _start_worker(parent_pid: int, initializer, initargs: tuple) -> None:
    # the parent's pid is passed in, not read here: a parent that died during our start-up is noticed too
    threading.Thread(target=_exit_with_parent, args=(parent_pid,), daemon=True, name="parent-watch").start()
    if initializer is not None:
        initializer(*initargs)


def _exit_with_parent(parent_pid: int) -> None:
    while os.getppid() == parent_pid:
        time.sleep(PARENT_POLL_S)
    os._exit(1)   # no cleanup: the parent that would collect our results is gone
