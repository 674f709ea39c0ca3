"""Ctrl-C stops a running DuckDB query at once, not when DuckDB next looks for signals."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb
import pytest

from m2maudit.config import Config
from m2maudit.ingest import ingest_paths
from m2maudit.interrupts import prompt_interrupts
from m2maudit.sources.generic_log import GenericLogAdapter
from m2maudit.store import Store


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_sigint_interrupts_a_long_query_at_once(signum: int) -> None:
    """Without the watcher, DuckDB 2.0 took 23 s to notice Ctrl-C in this join. SIGTERM
    (from a trial: a scan killed by `timeout` left 3.8 GB of spill files behind) too."""
    con = duckdb.connect()
    con.execute("CREATE TABLE t AS SELECT i, md5(i::VARCHAR) AS s FROM range(1000000) r(i)")
    sent: list[float] = []

    def press_ctrl_c() -> None:
        time.sleep(0.5)
        sent.append(time.monotonic())
        os.kill(os.getpid(), signum)

    threading.Thread(target=press_ctrl_c, daemon=True).start()
    stopped = (KeyboardInterrupt, RuntimeError, duckdb.InterruptException)
    with pytest.raises(stopped), prompt_interrupts(con):
        con.execute("SELECT count(*) FROM t a, t b WHERE a.s < b.s").fetchall()
    assert time.monotonic() - sent[0] < 3
    # Afterwards signals are as they were: the wakeup socket is gone, SIGTERM kills again.
    assert signal.set_wakeup_fd(-1) == -1
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL
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


def test_an_interrupt_that_skips_the_rollback_still_ends_as_an_interrupt(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """From a trial: Ctrl-C (or SIGTERM) landing as the transaction's `with` block exits
    skipped its ROLLBACK; dropping the staging tables then failed on the aborted transaction,
    and the run ended as "database error" with a traceback, its spill files left behind."""
    log = tmp_path / "a.jsonl"
    log.write_text('{"timestamp": "2026-11-20T10:00:00Z", "principal": "agent-a"}\n')
    store = Store.open(tmp_path / "s.duckdb")

    @contextmanager
    def transaction_whose_rollback_is_skipped() -> Iterator[None]:
        store.con.execute("BEGIN TRANSACTION")
        yield
        store.con.execute("COMMIT")

    def interrupted_load(ctx: object) -> None:
        with pytest.raises(duckdb.Error):
            store.con.execute("SELECT * FROM no_such_table")  # aborts the transaction
        raise KeyboardInterrupt

    monkeypatch.setattr(store, "transaction", transaction_whose_rollback_is_skipped)
    monkeypatch.setattr(GenericLogAdapter, "load", staticmethod(interrupted_load))
    with pytest.raises(KeyboardInterrupt):
        ingest_paths(store, [str(log)], [], Config())
    assert store.scalar("SELECT count(*) FROM events") == 0  # usable, nothing half-loaded
    store.close()
    store.rollback_quietly()  # on a closed connection too: no error


def test_a_sigterm_the_parent_ignores_stays_ignored() -> None:
    """From a review: the handler replaced an inherited SIG_IGN."""
    before = signal.signal(signal.SIGTERM, signal.SIG_IGN)
    try:
        with prompt_interrupts(duckdb.connect()):
            assert signal.getsignal(signal.SIGTERM) == signal.SIG_IGN
        assert signal.getsignal(signal.SIGTERM) == signal.SIG_IGN
    finally:
        signal.signal(signal.SIGTERM, before)


def test_an_interrupt_in_a_batch_of_small_files_ends_as_an_interrupt(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """From a review: the same race in a batch (thousands of small CloudTrail objects) ended
    as "database error", its staging tables dropped on the aborted transaction."""
    from m2maudit import ingest

    for n in range(3):
        event = {"eventTime": f"2026-11-20T10:0{n}:00Z", "eventName": "GetObject"}
        event["userIdentity"] = {"type": "IAMUser", "arn": f"arn:aws:iam::1:user/u{n}"}
        (tmp_path / f"ct{n}.json").write_text(json.dumps({"Records": [event]}))
    store = Store.open()

    def interrupted_batch(store_: Store, *args: object) -> None:
        store_.con.execute("BEGIN TRANSACTION")
        with pytest.raises(duckdb.Error):
            store_.con.execute("SELECT * FROM no_such_table")  # aborts the transaction
        raise KeyboardInterrupt

    monkeypatch.setattr(ingest, "_ingest_batch", interrupted_batch)
    with pytest.raises(KeyboardInterrupt):
        ingest_paths(store, [str(tmp_path)], [], Config())
    assert store.scalar("SELECT count(*) FROM events") == 0
    store.close()
