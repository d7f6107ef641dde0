"""The program: ``reconcile`` and ``python -m reconciler`` (:func:`main`)."""

from __future__ import annotations

import gc

#: the collector's thresholds in the program (Python's are 700, 10, 10): a young generation of
#: 100,000 objects, as mypy's command sets it for the same reason
GC_THRESHOLDS = (100_000, 20, 20)


def main() -> None:
    """Run the command line (:func:`reconciler.cli.entry`), the cyclic garbage collector set
    for a program that ends, before anything is imported.

    It runs less often than Python's default, which suits a server better than a command: the
    imports and then a plan make hundreds of thousands of objects that live until it ends, and
    the collector would walk them again and again (a tenth of a plan's Python time). What the
    imports made is set aside once they are done (frozen: it lives as long as the process)."""
    gc.set_threshold(*GC_THRESHOLDS)
    from .cli import entry

    gc.freeze()
    entry()


if __name__ == "__main__":
    main()
