"""Ctrl-C and SIGTERM stop a command the same way: exit 130 with one line saying what was kept.

Every output is written atomically (gpt2atlas.atomic), so a stop leaves each file or folder either as it was or
whole; the line lists the ones this run finished before the stop.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from gpt2atlas.atomic import kept

EXIT_CODE = 130  # 128 + SIGINT, what shells report for Ctrl-C
SHOWN = 4  # paths named in the line; the rest are counted


class Stop:
    """Which signal stopped the command, if any (typer turns the interrupt into a plain exit code 130)."""

    signum: int | None = None


@contextmanager
def stop_on_signals() -> Iterator[Stop]:
    """Within the block, Ctrl-C and SIGTERM (a service manager, `kill`, a job scheduler) interrupt the same way:
    a KeyboardInterrupt, with the signal noted in the `Stop` yielded."""
    stop = Stop()
    if threading.current_thread() is not threading.main_thread():  # only the main thread may set handlers
        yield stop
        return

    def interrupt(signum, frame) -> None:
        stop.signum = signum
        raise KeyboardInterrupt

    previous = {sig: signal.signal(sig, interrupt) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stop
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def stopped_line() -> str:
    """`stopped: nothing written`, or the outputs this process wrote (whole) before it was stopped."""
    paths = [str(p) for p in kept()]
    if not paths:
        return "stopped: nothing written"
    more = f" and {len(paths) - SHOWN} more" if len(paths) > SHOWN else ""
    return f"stopped: kept {', '.join(paths[:SHOWN])}{more} (each written whole); nothing half-written"
