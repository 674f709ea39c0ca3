"""Writing a report or baseline (`m2maudit.output_file`): whole or not at all, through links,
pipes and descriptors, and never over a file the run reads or one another user's link names."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from m2maudit.errors import AuditError
from m2maudit.output_file import check_output_path, write_output

ROOT = Path(__file__).resolve().parent.parent


def test_output_in_a_missing_directory_fails_early(tmp_path: Path) -> None:
    with pytest.raises(AuditError) as error:
        check_output_path(tmp_path / "missing" / "report.sarif")
    assert "does not exist" in str(error.value) and "\n" not in str(error.value)
    with pytest.raises(AuditError, match="is a directory"):
        check_output_path(tmp_path)
    assert check_output_path(tmp_path / "report.sarif") == tmp_path / "report.sarif"
    assert list(tmp_path.iterdir()) == []  # the probe file is gone


def test_a_directory_no_file_can_be_made_in_fails_early() -> None:
    """Permissions said yes (to root, always): the report failed after the whole scan."""
    with pytest.raises(
        AuditError, match=r"^--output /proc/report\.json: cannot write in directory"
    ):
        check_output_path("/proc/report.json")


def test_write_output_is_atomic_and_leaves_no_temp_files(tmp_path: Path) -> None:
    target = tmp_path / "report.csv"
    target.write_text("old")
    write_output(target, "a,b\nc,d\n")
    assert target.read_bytes() == b"a,b\nc,d\n"
    assert [p.name for p in tmp_path.iterdir()] == ["report.csv"]
    mode = stat.S_IMODE(target.stat().st_mode)
    umask = os.umask(0)
    os.umask(umask)
    assert mode == 0o666 & ~umask


def test_a_failed_write_keeps_the_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "report.json"
    target.write_text("previous report")

    def broken_replace(src: str, dst: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(AuditError, match="No space left on device"):
        write_output(target, "new report")
    assert target.read_text() == "previous report"
    assert [p.name for p in tmp_path.iterdir()] == ["report.json"]


def test_a_link_is_written_through_and_stays_a_link(tmp_path: Path) -> None:
    """The rename replaced the link with a regular file and left its target as it was."""
    (tmp_path / "reports").mkdir()
    real = tmp_path / "reports" / "real.json"
    real.write_text("{}")
    link = tmp_path / "link.json"
    link.symlink_to(real)
    write_output(link, "new report")
    assert link.is_symlink() and real.read_text() == "new report"
    assert sorted(p.name for p in (tmp_path / "reports").iterdir()) == ["real.json"]


def test_a_fifo_is_written_to_not_replaced(tmp_path: Path) -> None:
    """`-o >(gzip > r.gz)` or a named pipe: the reader got nothing and the pipe became a
    file."""
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    received: list[bytes] = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_bytes()), daemon=True)
    reader.start()
    write_output(fifo, "streamed report")
    reader.join(timeout=10)
    assert received == [b"streamed report"]
    assert stat.S_ISFIFO(fifo.stat().st_mode)


def test_an_output_that_is_a_file_the_run_reads_is_refused(tmp_path: Path) -> None:
    log = tmp_path / "audit.jsonl"
    log.write_text("evidence")
    link = tmp_path / "report.json"
    link.symlink_to(log)
    for path in (log, link):
        with pytest.raises(
            AuditError,
            match=r"is the same file as input .*audit\.jsonl; give --output a path of its own",
        ):
            check_output_path(path, "--output", [("input", log)])
    assert log.read_text() == "evidence"
    # Two outputs not written yet are one file when their paths are.
    with pytest.raises(AuditError, match="is the same file as --write-baseline"):
        check_output_path(
            tmp_path / "b.json", "--output", [("--write-baseline", tmp_path / "." / "b.json")]
        )


def test_a_descriptor_the_shell_opened_is_written_through(tmp_path: Path) -> None:
    """`-o /dev/stdout >> log` replaced the log with the report (renamed over the file the
    descriptor names); `>>` keeps what was there."""
    appended = tmp_path / "so.txt"
    appended.write_text("previous\n")
    code = (
        "from m2maudit.output_file import write_output\n"
        "write_output('/dev/stdout', 'report\\n')\n"
        "write_output('/dev/fd/1', 'again\\n')\n"
    )
    with appended.open("a") as stream:
        subprocess.run([sys.executable, "-c", code], stdout=stream, check=True)
    assert appended.read_text() == "previous\nreport\nagain\n"


def test_another_users_link_in_a_shared_directory_is_not_followed(tmp_path: Path) -> None:
    """Resolved and renamed over, such a link let anyone make a root scan replace a file of
    their choice (the kernel's protected_symlinks refuses root the same link)."""
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o1777)
    victim = tmp_path / "victim"
    victim.write_text("keep me")
    trap = shared / "report.json"
    trap.symlink_to(victim)
    os.lchown(trap, 65534, 65534)  # nobody's link; the test runs as root in CI
    with pytest.raises(AuditError, match="another user's symbolic link in a shared directory"):
        write_output(trap, "report")
    assert victim.read_text() == "keep me"
    os.lchown(trap, os.geteuid(), os.getegid())  # one's own link is followed
    write_output(trap, "report")
    assert victim.read_text() == "report" and trap.is_symlink()


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("", "--output: an empty path"),
        ("report.json/", "a path ending in / names a directory"),
        ("report.json/.", "report.json is not a directory"),
        ("report.json/../other.json", "report.json is not a directory"),
        ("loop-a", "too many levels of symbolic links"),
    ],
)
def test_paths_that_name_no_file_to_write_are_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, message: str
) -> None:
    """`report.json/` replaced report.json; a link loop was replaced by a regular file."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "report.json").write_text("old")
    (tmp_path / "loop-a").symlink_to("loop-b")
    (tmp_path / "loop-b").symlink_to("loop-a")
    with pytest.raises(AuditError, match=message):
        check_output_path(name)
    assert (tmp_path / "report.json").read_text() == "old"
    assert (tmp_path / "loop-a").is_symlink()


def test_a_report_written_again_keeps_the_old_files_mode_and_owner(tmp_path: Path) -> None:
    """A report locked down to 0600 (it names credentials) came back 0644 and root's."""
    target = tmp_path / "report.json"
    target.write_text("old")
    target.chmod(0o600)
    os.chown(target, 65534, 65534)  # as CI runs: root may give a file away
    write_output(target, "new")
    assert target.read_text() == "new"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert (target.stat().st_uid, target.stat().st_gid) == (65534, 65534)


def test_another_process_descriptor_is_refused() -> None:
    """Followed, /proc/PID/fd/1 of another process led to the file it writes, renamed over."""
    parent = os.getppid()
    with pytest.raises(AuditError, match="another process's descriptor"):
        check_output_path(f"/proc/{parent}/fd/1")


def test_a_closed_descriptor_is_named_as_closed() -> None:
    """With standard output closed (`>&-`), `-o /dev/stdout` said it could not write in
    '/proc/PID/fd', and a report for standard output ended in 'internal error'."""
    code = (
        "from m2maudit.errors import AuditError\n"
        "from m2maudit.output_file import check_output_path\n"
        "for path in ('/dev/stdout', '/dev/fd/1', '/proc/self/fd/1', '/dev/fd/9'):\n"
        "    try:\n"
        "        check_output_path(path)\n"
        "    except AuditError as exc:\n"
        "        print(exc, file=__import__('sys').stderr)\n"
    )
    closed = subprocess.run(
        [sys.executable, "-c", code],
        preexec_fn=lambda: os.close(1),
        stderr=subprocess.PIPE,
        text=True,
        check=True,
    )
    assert closed.stderr.splitlines() == [
        "--output /dev/stdout: standard output is not open",
        "--output /dev/fd/1: standard output is not open",
        "--output /proc/self/fd/1: standard output is not open",
        "--output /dev/fd/9: descriptor 9 is not open",
    ]
    scan = subprocess.run(
        [sys.executable, "-m", "m2maudit", "scan", str(ROOT / "sample_logs" / "k8s"), "-q"],
        preexec_fn=lambda: os.close(1),
        stderr=subprocess.PIPE,
        text=True,
    )
    assert scan.returncode == 2
    assert "standard output is closed: give --output FILE" in scan.stderr
    assert "internal error" not in scan.stderr
