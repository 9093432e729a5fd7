"""fsutil's flock helpers: the one place that waits for and probes an flock (runs' launch lock,
the queue's file, the scheduler's and a worker's lock)."""

from __future__ import annotations

import fcntl
import os
import threading
import time

from sage_ft_tui.engine.fsutil import flock_held, flock_wait


def test_flock_wait_gives_up_while_held_and_takes_it_once_released(tmp_path):
    path = tmp_path / "lock"
    path.touch()
    holder = os.open(path, os.O_RDONLY)  # its own open file: a lock the other descriptor cannot share
    waiter = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(holder, fcntl.LOCK_EX)
        t = time.time()
        assert flock_wait(waiter, 0.3) is False
        assert time.time() - t >= 0.3
        threading.Timer(0.2, lambda: fcntl.flock(holder, fcntl.LOCK_UN)).start()
        assert flock_wait(waiter, 5) is True  # taken once the holder lets go, well before 5 s
    finally:
        os.close(waiter)
        os.close(holder)
    assert flock_held(path) is False
