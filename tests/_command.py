"""``reconcile ARGS`` run in this process, as its entry point runs it (``reconciler.cli.main``:
the same error mapping, exit codes and consoles), with stdin empty and stdout and stderr
captured apart. A child process costs an interpreter start and every import again (~0.5 s a
run); the tests that need a real process (a signal, a kill, a crash, the exit status the OS
sees) start one themselves.

What the run changes process-wide is put back: the signal handlers ``main`` installs, the log
handler ``-v`` configures (bound to the captured stderr), the progress format ``--log-format``
sets, the working folder and the environment.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
from collections.abc import Mapping
from pathlib import Path

from click.testing import CliRunner

__all__ = ["invoke"]

_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def _exit_code(exc: SystemExit) -> int:
    code = exc.code
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)  # sys.exit("message"): printed, status 1, as Python does
    return 1


def invoke(
    *args: str, env: Mapping[str, str] | None = None, cwd: Path | None = None
) -> tuple[int, str, str]:
    """``(exit code, stdout, stderr)`` of ``reconcile ARGS`` run in this process."""
    from reconciler import _logging
    from reconciler.cli import _progress, main

    runner = CliRunner()
    handlers = {sig: signal.getsignal(sig) for sig in _SIGNALS}
    root = logging.getLogger(_logging.ROOT)
    level = root.level
    progress_json = _progress._json["on"]
    argv = sys.argv
    here = Path.cwd()
    with runner.isolation(env={"NO_COLOR": "1", **(env or {})}) as (stdout, stderr, _):
        sys.argv = ["reconcile", *args]
        try:
            if cwd is not None:
                os.chdir(cwd)
            try:
                main()
                code = 0
            except SystemExit as exc:
                code = _exit_code(exc)
            with contextlib.suppress(ValueError):  # flushed while the streams are open
                sys.stdout.flush()
                sys.stderr.flush()
        finally:
            sys.argv = argv
            os.chdir(here)
            for sig, handler in handlers.items():
                if handler is not None:  # None: not installed from Python, left as it is
                    signal.signal(sig, handler)
            for installed in [h for h in root.handlers if isinstance(h, _logging._Handler)]:
                root.removeHandler(installed)
            root.setLevel(level)
            _progress.json_lines(progress_json)
    return code, stdout.getvalue().decode(), stderr.getvalue().decode(errors="replace")
