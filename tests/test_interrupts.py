"""Ctrl-C stops a running DuckDB query at once, not when DuckDB next looks for signals."""

from __future__ import annotations

import os
import signal
import threading
import time

import duckdb
import pytest

from m2maudit.interrupts import prompt_interrupts


def test_sigint_interrupts_a_long_query_at_once() -> None:
    """Without the watcher, DuckDB 2.0 took 23 s to notice Ctrl-C in this join."""
    con = duckdb.connect()
    con.execute("CREATE TABLE t AS SELECT i, md5(i::VARCHAR) AS s FROM range(1000000) r(i)")
    sent: list[float] = []

    def press_ctrl_c() -> None:
        time.sleep(0.5)
        sent.append(time.monotonic())
        os.kill(os.getpid(), signal.SIGINT)

    threading.Thread(target=press_ctrl_c, daemon=True).start()
    stopped = (KeyboardInterrupt, RuntimeError, duckdb.InterruptException)
    with pytest.raises(stopped), prompt_interrupts(con):
        con.execute("SELECT count(*) FROM t a, t b WHERE a.s < b.s").fetchall()
    assert time.monotonic() - sent[0] < 3
    # Afterwards signals are as they were: the wakeup socket is gone.
    assert signal.set_wakeup_fd(-1) == -1
    assert con.execute("SELECT 42").fetchone() == (42,)


def test_outside_the_main_thread_it_changes_nothing() -> None:
    con = duckdb.connect()
    seen: list[object] = []

    def run() -> None:
        with prompt_interrupts(con):
            seen.append(con.execute("SELECT 1").fetchone())

    worker = threading.Thread(target=run)
    worker.start()
    worker.join()
    assert seen == [(1,)]
