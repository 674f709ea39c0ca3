"""Writing a report or baseline to `--output` / `--write-baseline`: whole or not at all, and
never over what must not be replaced.

What a path can be, and why each is written as it is:

- a regular file (or none yet): a temporary file beside it is renamed over it, so a failed
  run keeps the old report and never leaves half a new one;
- a descriptor the shell opened (`-o /dev/stdout`, `-o >(gzip > r.gz)`, which is
  `/dev/fd/63`): written through that descriptor, as the shell's `>>` or pipe expects.
  Opened again by name it would be truncated, and renamed over it would be gone;
- a FIFO or a device: written to in place. A rename would replace the node (run as root,
  `-o /dev/null` made /dev/null a regular file);
- a symbolic link: followed, as the shell's `>` follows it, except one the kernel's
  `protected_symlinks` would refuse: another user's link in a shared sticky directory such as
  /tmp, the classic way to make root overwrite a file of its choice;
- a file the run reads (a log, the inventory, the config, a baseline): refused before the
  scan, since the report would replace the evidence.
"""

from __future__ import annotations

import contextlib
import os
import re
import stat
import tempfile
from collections.abc import Iterable
from pathlib import Path

from m2maudit.errors import AuditError

# An output the shell already opened: its descriptor, by the names Linux gives it.
_DESCRIPTOR_PATH = re.compile(
    r"/dev/std(?P<std>out|err)|/(?:dev|proc/(?P<pid>self|\d+))/fd/(?P<fd>\d+)"
)
_STANDARD = {"out": 1, "err": 2}
_STANDARD_NAME = {1: "standard output", 2: "standard error"}
MAX_LINKS = 40  # as the kernel's ELOOP limit

Destination = int | Path  # an open descriptor, or the real path of the file to write


def check_output_path(
    path: str | Path,
    label: str = "--output",
    read_by_the_run: Iterable[tuple[str, str | Path]] = (),
) -> Destination:
    """Where a report or baseline given as `path` will be written; an `AuditError` before the
    scan when it cannot be, or when it is also a file the run reads (`read_by_the_run`, each
    with the flag or role that names it)."""
    _check_name(path, label)
    for other_label, other in read_by_the_run:
        if same_file(Path(path), Path(other)):
            raise AuditError(
                f"{label} {path}: is the same file as {other_label} {other}; give {label} a "
                "path of its own"
            )
    destination = _destination(str(path), label)
    if isinstance(destination, Path) and not _is_special(destination):
        _check_directory(destination.parent, label, path)
    return destination


def write_output(path: str | Path, text: str, label: str = "--output") -> None:
    """Write `text` as UTF-8 to `path` (see the module's docstring for how, and why).

    Bytes are written as given (no newline translation), so every platform produces the same
    file. A new file gets the usual permissions (0666 less the umask), not the temp file's 0600.
    """
    destination = check_output_path(path, label)  # again: the scan took a while
    data = text.encode("utf-8")
    try:
        if isinstance(destination, int):
            with os.fdopen(os.dup(destination), "wb") as stream:
                stream.write(data)
        elif _is_special(destination):
            with open(destination, "wb") as stream:
                stream.write(data)
        else:
            _replace(destination, data)
    except OSError as exc:
        raise AuditError(f"{label} {path}: cannot write: {exc.strerror or exc}") from None


def same_file(one: Path, other: Path) -> bool:
    """Whether two paths name one file: the same inode when both exist, else the same real
    path (two outputs not written yet)."""
    try:
        return os.path.samefile(one, other)
    except OSError:
        return os.path.realpath(one) == os.path.realpath(other)


def _check_name(path: str | Path, label: str) -> None:
    text = str(path)
    if not text:
        raise AuditError(f"{label}: an empty path")
    if Path(path).is_dir():
        raise AuditError(f"{label} {path}: is a directory")
    if text.endswith("/"):  # `report.json/` would otherwise replace report.json
        raise AuditError(f"{label} {path}: a path ending in / names a directory")


def _destination(path: str, label: str) -> Destination:
    """The descriptor or real path `path` leads to, following symbolic links one part at a
    time as the kernel does, and refusing one it would refuse (`_check_link`). Parts are
    taken as written (`report.json/.` names no file), not as pathlib tidies them."""
    resolved = Path("/" if path.startswith("/") else os.getcwd())
    pending = [part for part in path.split("/") if part]
    links = 0
    while pending:
        part = pending.pop(0)
        if resolved.exists() and not resolved.is_dir():
            raise AuditError(f"{label} {path}: {resolved} is not a directory")
        candidate = (
            resolved if part == "." else resolved.parent if part == ".." else resolved / part
        )
        descriptor = None if pending else _open_descriptor(candidate, label, path)
        if descriptor is not None:
            return descriptor
        if not candidate.is_symlink():
            resolved = candidate
            continue
        links += 1
        if links > MAX_LINKS:
            raise AuditError(f"{label} {path}: too many levels of symbolic links")
        _check_link(candidate, label, path)
        target = os.readlink(candidate)
        if target.startswith("/"):
            resolved = Path("/")
        pending[:0] = [part for part in target.split("/") if part]
    return resolved


def _open_descriptor(path: Path, label: str, given: str) -> int | None:
    """The descriptor a path such as /dev/stdout or /dev/fd/63 names, if it is open. Another
    process's (/proc/PID/fd/N) is refused: followed, its file would be renamed over."""
    match = _DESCRIPTOR_PATH.fullmatch(str(path))
    if match is None:
        return None
    if match["pid"] not in (None, "self", str(os.getpid())):
        raise AuditError(f"{label} {given}: another process's descriptor; give a file's path")
    descriptor = _STANDARD[match["std"]] if match["std"] else int(match["fd"])
    try:
        os.fstat(descriptor)
    except OSError:
        what = _STANDARD_NAME.get(descriptor, f"descriptor {descriptor}")
        raise AuditError(f"{label} {given}: {what} is not open") from None
    return descriptor


def _check_link(link: Path, label: str, path: str) -> None:
    """Refuse to follow another user's link in a shared sticky directory (/tmp), unless the
    directory's owner made it: the rule of Linux's `fs.protected_symlinks`, which a resolved
    path renamed over would otherwise get around."""
    owner = link.lstat().st_uid
    directory = link.parent.stat()
    shared = directory.st_mode & stat.S_ISVTX and directory.st_mode & stat.S_IWOTH
    if shared and owner not in (os.geteuid(), directory.st_uid):
        raise AuditError(
            f"{label} {path}: {link} is another user's symbolic link in a shared directory; "
            "it is not followed"
        )


def _is_special(path: Path) -> bool:
    """A FIFO, device or socket: written to in place, never renamed over."""
    try:
        mode = path.stat().st_mode
    except OSError:  # not there yet: a new regular file
        return False
    return not stat.S_ISREG(mode) and not stat.S_ISDIR(mode)


def _check_directory(directory: Path, label: str, path: str | Path) -> None:
    """The directory exists and a file can be made in it: permissions alone miss a read-only
    mount, or /proc (where root is told yes)."""
    if not directory.is_dir():
        raise AuditError(f"{label} {path}: directory {str(directory)!r} does not exist")
    try:
        handle, probe = tempfile.mkstemp(prefix=".m2maudit.", suffix=".tmp", dir=directory)
        os.close(handle)
        os.unlink(probe)
    except OSError as exc:
        raise AuditError(
            f"{label} {path}: cannot write in directory {str(directory)!r}: {exc.strerror or exc}"
        ) from None


def _replace(target: Path, data: bytes) -> None:
    """`data` into a temporary file beside `target`, then renamed over it, with the mode and
    owner the old file had (a report locked down to 0600 names credentials; the shell's `>`
    would have kept both)."""
    handle, temp_name = tempfile.mkstemp(
        prefix=f".{target.name}.", suffix=".tmp", dir=target.parent
    )
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
        _take_over_mode(temp_name, target)
        os.replace(temp_name, target)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise


def _take_over_mode(temp_name: str, target: Path) -> None:
    """The old file's mode and owner, or for a new file 0666 less the umask (not mkstemp's
    0600). Only root may give a file to another owner; anyone else keeps their own."""
    try:
        old = target.stat()
    except FileNotFoundError:
        os.chmod(temp_name, 0o666 & ~_umask())
        return
    os.chmod(temp_name, stat.S_IMODE(old.st_mode))
    if (old.st_uid, old.st_gid) != (os.geteuid(), os.getegid()):
        with contextlib.suppress(PermissionError):
            os.chown(temp_name, old.st_uid, old.st_gid)


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask
