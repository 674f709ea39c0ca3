"""`--format markdown`: a summary and a findings table fit for a pull-request comment.

Text from logs is hostile in a comment: principals, credentials and rule-controlled values go
into code spans (no `@mention`, no links, no HTML), and everything else is escaped so a `|`,
`<`, `*` or newline cannot break the table or inject markup. The table lists active findings
first (at most `MAX_ROWS`, and only as many as keep the comment under GitHub's `MAX_CHARS`),
then suppressed and baselined ones in a collapsed section.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from m2maudit.findings import Finding, ScanResult
from m2maudit.reporters.base import Reporter, ReportOptions
from m2maudit.reporters.serialize import clean_text, input_label
from m2maudit.reporters.summary import (
    Summary,
    not_audited_note,
    ordered_findings,
    percent,
    problem_title,
    status,
    summarize,
    summary_line,
)
from m2maudit.timeutil import iso_seconds

MAX_ROWS = 100
MAX_CELL = 300
# GitHub refuses a comment over 65 536 characters (`gh pr comment --body-file` fails): the
# tables stop short of it, leaving room for the lines that say how many more there are.
MAX_CHARS = 65_536
_TAIL_RESERVE = 1_000
# Characters that are markup inside a table cell or heading (line-start markers like `-` or
# `#` cannot occur there); `<`, `>` and `&` become entities first.
_ESCAPE = re.compile(r"([\\`*_\[\]|~])")
# What in the word before a code span makes GitHub read it as a link, backtick included.
_AUTOLINKED = ("://", "www.", "@", "mailto:", "xmpp:")
_LAST_WORD = re.compile(r"\S*$")


def text(value: object, limit: int = MAX_CELL) -> str:
    """Escape text for a Markdown table cell: one line, no markup, no HTML, no escape
    sequences (a `cat` of the file must not drive the terminal)."""
    return _escaped(_one_line(value, limit))


def prose(value: object, limit: int = MAX_CELL) -> str:
    """`text` that keeps its `code spans` (a rule's remediation names commands and keys):
    each span goes through `code`, the rest is escaped.

    A cut inside a span cuts before it. All of it is escaped, spans too, when a backtick is
    left unpaired or a span opens right after a URL or an address: GitHub's autolinks take
    the backtick into the link (`https://x.example/a`<img>``), the span never forms, and
    what it held would be read as HTML.
    """
    whole = _flat(value)
    raw = _cut(whole, limit)
    if raw != whole and raw.count("`") % 2 and whole.count("`") % 2 == 0:
        raw = raw[: raw.rindex("`")].rstrip() + " …"  # the cut fell inside a span: before it
    parts = raw.split("`")
    if not _spans_form(raw, parts):
        return _escaped(raw)
    pieces = []
    for n, part in enumerate(parts):
        in_code = n % 2 == 1 and part.strip()
        # `len(part)`: the limit was applied to the whole text above, not to each span.
        pieces.append(code(part, len(part)) if in_code else _escaped(part))
    return "".join(pieces)


def _spans_form(raw: str, parts: list[str]) -> bool:
    """Whether every backtick is paired, and no span opens right after what GitHub would
    make a link (a URL, `www.`, an address): the word before each opening backtick."""
    if len(parts) % 2 == 0:
        return False
    position = 0
    for n, part in enumerate(parts[:-1]):
        position += len(part)
        word = _LAST_WORD.search(raw[:position])
        if n % 2 == 0 and word and any(t in word.group().lower() for t in _AUTOLINKED):
            return False
        position += 1  # the backtick
    return True


def _one_line(value: object, limit: int) -> str:
    """`value` on one line, cut to `limit` characters."""
    return _cut(_flat(value), limit)


def _flat(value: object) -> str:
    """`value` on one line: safe text, runs of white space as one space."""
    return " ".join(clean_text(value).split())


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _escaped(raw: str) -> str:
    escaped = raw.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _LIVE_TEXT.sub(_ZERO_WIDTH_SPACE, _ESCAPE.sub(r"\\\1", escaped))


# Where GitHub would make text from a log live: a mention (`@team`), an address, an issue
# (`#1`, `GH-1`), a URL (`https://`, `www.`). An entity such as `&#64;` does not stop it (it
# is decoded first); a zero-width space after the `@`, the `#`, the `:` or the `www` does.
_LIVE_TEXT = re.compile(
    r"(?<=@)(?=[\w.-])|(?<=#)(?=\w)|(?<=\bgh)(?=-\d)|(?<=:)(?=//)|(?<=\bwww)(?=\.)", re.I
)
_ZERO_WIDTH_SPACE = "&#8203;"


def code(value: object | None, limit: int = 80) -> str:
    """A code span for identifiers (principal, credential, rule id); `-` when absent."""
    if value is None or value == "":
        return "-"
    raw = _one_line(value, limit).replace("|", "\\|")
    longest = max((len(run) for run in re.findall("`+", raw)), default=0)
    if not longest:
        return f"`{raw}`"
    # A fence longer than any run of backticks inside: a name from a log holding ``
    # closed a double fence early, and what followed went out as HTML.
    fence = "`" * (longest + 1)
    return f"{fence} {raw} {fence}"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def _table_within(
    header: Sequence[str], rows: Sequence[Sequence[str]], budget: int
) -> tuple[list[str], int]:
    """The table with as many rows as fit in `budget` characters (lines and their breaks),
    and how many that is."""
    lines = _table(header, [])
    used = _size(lines)
    shown = 0
    for row in _table(header, rows)[2:]:
        used += len(row) + 1
        if used > budget:
            break
        lines.append(row)
        shown += 1
    return lines, shown


def _size(lines: Sequence[str]) -> int:
    return sum(len(line) + 1 for line in lines)


def _summary_tables(summary: Summary) -> list[str]:
    severity_rows = [
        [severity, f"{c.active:,}", f"{c.suppressed:,}", f"{c.baselined:,}"]
        for severity, c in summary.by_severity.items()
        if c.total
    ]
    problem_rows = [
        [
            text(problem_title(problem)),
            code(problem),
            f"{c.active:,}",
            f"{c.suppressed:,}",
            f"{c.baselined:,}",
        ]
        for problem, c in summary.by_problem.items()
        if c.total
    ]
    lines: list[str] = []
    if severity_rows:
        lines += _table(("Severity", "Active", "Suppressed", "Baselined"), severity_rows)
        lines.append("")
    if problem_rows:
        lines += _table(("Problem", "Key", "Active", "Suppressed", "Baselined"), problem_rows)
        lines.append("")
    if summary.attribution:
        actions = "?" if summary.agent_actions is None else f"{summary.agent_actions:,}"
        lines += [
            f"Attribution of {actions} agent actions: "
            + ", ".join(f"{part.label} {percent(part.share)}" for part in summary.attribution),
            "",
        ]
    return lines


def _finding_rows(findings: Sequence[Finding]) -> list[list[str]]:
    return [
        [
            finding.severity,
            code(finding.rule_id),
            code(finding.principal),
            code(finding.token_id),
            text(finding.message or finding.title),
            prose(finding.remediation, 200),
        ]
        for finding in findings
    ]


def _quiet_rows(findings: Sequence[Finding]) -> list[list[str]]:
    """Suppressed and baselined findings: the reason they do not fail instead of the fix."""
    return [
        [
            status(finding),
            finding.severity,
            code(finding.rule_id),
            code(finding.principal),
            code(finding.token_id),
            text(finding.message or finding.title),
            text((finding.suppression or {}).get("reason", "in the baseline"), 200),
        ]
        for finding in findings
    ]


class MarkdownReporter(Reporter):
    name = "markdown"
    extension = "md"
    media_type = "text/markdown"
    description = "summary and findings table for a pull-request comment"
    signature = re.compile(r"## \S+ m2maudit: ")

    def render(self, result: ScanResult, options: ReportOptions) -> str:
        summary = summarize(result, options.fail_on)
        findings = ordered_findings(result)
        active = [finding for finding in findings if status(finding) == "active"]
        quiet = [finding for finding in findings if status(finding) != "active"]
        verdict = "❌" if summary.failing or options.strict_failure else "✅"
        if verdict == "✅" and not_audited_note(result):  # passed, but not on everything
            verdict = "⚠️"
        headline = summary_line(result, options.fail_on)
        if options.strict_failure:
            headline += f"; the run failed, {options.strict_failure}"
        start, end = result.window
        lines = [
            f"## {verdict} m2maudit: {text(headline, 600)}",
            "",
            f"As of {code(iso_seconds(result.as_of))}; "
            f"window {code(iso_seconds(start))} to {code(iso_seconds(end))}; "
            f"{len(result.inputs):,} input(s): "
            + (", ".join(_input(item) for item in result.inputs[:10]) or "-")
            + (" …" if len(result.inputs) > 10 else ""),
            "",
        ]
        lines += _summary_tables(summary)
        if result.skipped:
            lines += [
                "Skipped rules: "
                + ", ".join(
                    f"{code(item.rule_id)} ({text(item.reason, 120)})"
                    for item in sorted(result.skipped, key=lambda item: item.rule_id)
                ),
                "",
            ]
        header = ("Severity", "Rule", "Principal", "Credential", "Finding", "Remediation")
        if active:
            budget = MAX_CHARS - _TAIL_RESERVE - _size(lines)
            table, shown = _table_within(header, _finding_rows(active[:MAX_ROWS]), budget)
            lines += ["### Findings", "", *table]
            if len(active) > shown:
                lines += [
                    "",
                    f"… and {len(active) - shown:,} more active findings "
                    "(see the JSON or SARIF report).",
                ]
            lines.append("")
        if quiet:
            lines += [
                f"<details><summary>Suppressed and baselined findings ({len(quiet):,})</summary>",
                "",
            ]
            budget = MAX_CHARS - _TAIL_RESERVE - _size(lines)
            table, shown = _table_within(
                ("Status", *header[:-1], "Reason"), _quiet_rows(quiet[:MAX_ROWS]), budget
            )
            lines += table
            if len(quiet) > shown:
                lines += ["", f"… and {len(quiet) - shown:,} more."]
            lines += ["", "</details>", ""]
        return "\n".join(lines).rstrip("\n") + "\n"


def _input(item: dict[str, Any]) -> str:
    """An input as a PR comment names it: its path, and whether it was read at all."""
    state = " (unreadable)" if item.get("error") else " (skipped)" if item.get("skipped") else ""
    rejected = int(item.get("rejected") or 0)
    return code(input_label(item)) + state + (f" ({rejected:,} rejected)" if rejected else "")
