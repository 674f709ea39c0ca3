"""Errors a user can act on.

Anything raised as `AuditError` is printed as one line on stderr and ends the run with exit
code 2. Its message must never contain a raw token or secret.
"""

import reprlib

# Why a gzip file cannot be read: DuckDB's readers and Python's say it in many ways.
GZIP_BROKEN = "truncated or corrupt gzip data"


class AuditError(Exception):
    """The audit could not run: bad flags, config, input or rule."""


class InputError(AuditError):
    """An input file could not be read at all (as opposed to a single bad record)."""

    def __init__(self, source: str, reason: str, line: int | None = None) -> None:
        where = f"{source}:{line}" if line else source
        super().__init__(f"{where}: {reason}")
        self.source = source
        self.reason = reason
        self.line = line


class BrokenGzip(InputError):
    """A gzip file whose data is truncated or corrupt: ingest still reads its whole lines
    (see `m2maudit.sources.standins`)."""

    def __init__(self, source: str) -> None:
        super().__init__(source, GZIP_BROKEN)


class UnrecognisedRecords(InputError):
    """Records (JSON or CSV) that no format claims: most likely a log read with a wrong
    mapping, where a file of plain text is likely not a log at all. A run that audits no
    event because of such files fails (see `cli.no_event_read`)."""


class NothingToAudit(InputError):
    """A file of a known kind that holds no events (a CloudTrail digest, an empty batch):
    passed over and said so, not an unreadable file."""


def shown(value: object) -> str:
    """A user's value quoted in an error: its repr, cut short, any secret in it cut out. A
    config value may be a megabyte of text or a list nested a thousand deep; the error
    stays one short line."""
    if isinstance(value, str):  # whole first: a JWT cut in its middle is no JWT to a pattern
        value = _redacted(value)
    return _redacted(_SHORT.repr(value))


def _redacted(text: str) -> str:
    from m2maudit.secrets import redact_secrets  # (secrets -> fingerprint -> errors)

    return redact_secrets(text)


def _short_repr() -> reprlib.Repr:
    short = reprlib.Repr()
    short.maxstring = short.maxother = 60
    short.maxlist = short.maxtuple = short.maxdict = short.maxset = 4
    short.maxlevel = 2
    return short


_SHORT = _short_repr()


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (DuckDB's run on with context), or its type.
    Any secret it quotes from the input is cut out."""
    text = str(exc).strip()
    return _redacted(text.splitlines()[0]) if text else type(exc).__name__


def yaml_problem(exc: BaseException) -> tuple[str, int | None]:
    """PyYAML's error as `invalid YAML: <problem>` and its 1-based line, when it names one.
    PyYAML quotes the input (`the tag 'tag:ghp_...'`): a secret there is cut out."""
    mark = getattr(exc, "problem_mark", None)
    problem = " ".join(str(getattr(exc, "problem", None) or exc).split())  # always one line
    reason = f"invalid YAML: {_redacted(problem)}"
    return reason, (mark.line + 1 if mark is not None else None)
