"""Ctrl-C that stops a DuckDB query at once.

DuckDB notices a pending SIGINT only between pieces of its work, which on a read of a
gigabyte log come seconds apart (3.5 s measured on 5 M events). The signal module can
write each signal's number to a socket the moment it arrives; a thread waiting on that
socket interrupts the connection's running query, which then stops within milliseconds.
Python's own handler still raises KeyboardInterrupt as usual.

SIGTERM (`timeout`, a CI runner cancelling a job, `kill`) is handled the same way: without a
handler Python dies at once, the store is never closed, and DuckDB leaves its spill directory
(gigabytes, beside a `--db` file) behind.
"""

from __future__ import annotations

import signal
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import duckdb


@contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """While inside, SIGTERM raises KeyboardInterrupt, as Ctrl-C does: the command ends with
    its one-line "interrupted" and exit 130 wherever it is (start-up, rendering), and a store
    open at the time is closed. A SIGTERM the parent set to be ignored stays ignored; a
    handler not set from Python (None) is put back as the default."""
    if threading.current_thread() is not threading.main_thread():
        yield  # only the main thread can set handlers
        return
    previous = signal.getsignal(signal.SIGTERM)
    try:
        if previous is not signal.SIG_IGN:
            signal.signal(signal.SIGTERM, _stop)
        yield
    finally:
        signal.signal(signal.SIGTERM, previous or signal.SIG_DFL)


@contextmanager
def prompt_interrupts(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """While inside, Ctrl-C and SIGTERM also interrupt the query running on `con`."""
    if threading.current_thread() is not threading.main_thread():
        yield  # only the main thread can watch signals
        return
    reader, writer = socket.socketpair()
    writer.setblocking(False)
    previous = signal.set_wakeup_fd(writer.fileno(), warn_on_full_buffer=False)
    watcher = threading.Thread(
        target=_interrupt_on_sigint, args=(reader, con), name="m2maudit-sigint", daemon=True
    )
    try:
        with sigterm_as_interrupt():
            watcher.start()
            yield
    finally:
        signal.set_wakeup_fd(previous)
        writer.close()  # the watcher reads the end of the stream and returns
        if watcher.is_alive():
            watcher.join()
        reader.close()


def _stop(signum: int, frame: object) -> None:
    """SIGTERM ends the run as Ctrl-C does: the store is closed on the way out."""
    raise KeyboardInterrupt


def _interrupt_on_sigint(reader: socket.socket, con: duckdb.DuckDBPyConnection) -> None:
    while signals := reader.recv(64):
        if signal.SIGINT in signals or signal.SIGTERM in signals:
            con.interrupt()
