"""The apply lock: an ``flock`` on a file per target, released by the kernel when the process
dies, so a killed apply never leaves a stale lock behind."""

from __future__ import annotations

import contextlib
import fcntl
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from .._logging import fields, logger
from ..exceptions import LockedError

__all__ = ["hold"]

log = logger("statestore")


@contextlib.contextmanager
def hold(lock_dir: Path, target: str, *, wait: float, purpose: str) -> Iterator[None]:
    """Hold the lock of ``target`` in ``lock_dir``; wait up to ``wait`` seconds, then refuse.

    ``purpose`` is recorded with the process id, so one that finds the lock taken says who
    holds it."""
    lock_dir.mkdir(parents=True, exist_ok=True)
    safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in target)
    fd = os.open(lock_dir / f"{safe}.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    pid, _, what = (
                        os.pread(fd, 64, 0).decode(errors="replace").strip().partition(" ")
                    )
                    who = f" (process {pid})" if pid else ""
                    raise LockedError(
                        f"another {what or 'apply'} is running on target {target!r}{who}; "
                        "wait for it to finish"
                    ) from None
                time.sleep(0.1)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()} {purpose}".encode(), 0)
        log.debug(
            "%s: %s lock taken",
            target,
            purpose,
            extra=fields("lock", target=target, purpose=purpose),
        )
        try:
            yield
        finally:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


if sys.platform == "win32":  # pragma: no cover
    raise ImportError("the state store needs a POSIX system (fcntl)")
