"""The config's digest (:attr:`~reconciler.config.Config.digest`): SHA-256 of the YAML and of
the SHA-256 of every file it references (sources, member files), each named by its path from the
YAML's folder, in path order. A saved plan is refused when it moved.

Hashing a large source takes a while (40 ms of CPU for a million customers), so each file is
hashed as soon as the checks reference it, in one daemon thread beside them: while the checks
read headers and samples on one core, rather than while the plan's scan of the sources wants
both (where it cost the plan 3% of its time).
"""

from __future__ import annotations

import functools
import hashlib
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import TypeVar

__all__ = ["FileDigests"]

_T = TypeVar("_T")


def _file_digest(path: Path) -> str:
    with path.open("rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def _settle(future: Future[_T], call: Callable[[], _T]) -> None:
    try:
        future.set_result(call())
    except BaseException as exc:  # handed over to whoever waits: Config.digest
        future.set_exception(exc)


class FileDigests:
    """The digests of the files a config references, computed in order of reference by one
    daemon thread, which ends once :meth:`digest` (or :meth:`stop`) is asked."""

    def __init__(self) -> None:
        self._files: dict[Path, Future[str]] = {}
        self._jobs: queue.SimpleQueue[Callable[[], None] | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        #: the thread was told to end (after the digest, or without it)
        self._ending = False

    def add(self, path: Path) -> None:
        """Hash ``path`` (once, however often it is referenced)."""
        if path in self._files:
            return
        assert not self._ending, "a file referenced after the digest was asked"
        found: Future[str] = Future()
        self._files[path] = found
        self._jobs.put(lambda: _settle(found, lambda: _file_digest(path)))
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="config-digest", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while (job := self._jobs.get()) is not None:
            job()

    def digest(self, raw: bytes, base: Path) -> Future[str]:
        """The config's digest (``raw``: the YAML's bytes; ``base``: its folder), once every
        file referenced so far is hashed; the thread then ends."""
        result: Future[str] = Future()
        files = dict(self._files)
        combine = functools.partial(_settle, result, lambda: _combined(raw, base, files))
        if self._thread is None:
            combine()
        else:
            self._jobs.put(combine)
        self.stop()
        return result

    def stop(self) -> None:
        """End the thread once it has done what it was given (once: the digest asks it)."""
        if self._thread is not None and not self._ending:
            self._jobs.put(None)
        self._ending = True


def _combined(raw: bytes, base: Path, files: dict[Path, Future[str]]) -> str:
    def key(p: Path) -> str:
        try:
            return p.relative_to(base).as_posix()
        except ValueError:
            return p.as_posix()

    h = hashlib.sha256()
    h.update(b"audiences.yaml\0")
    h.update(raw)
    for path in sorted(files, key=key):
        h.update(b"\0" + key(path).encode() + b"\0" + files[path].result().encode())
    return h.hexdigest()
