"""`--format table`: the terminal report, the default.

Layout, top to bottom: a header (tool, as-of, window, inputs); a summary panel (findings by
severity and by problem, attribution coverage, suppressed / baselined / failing counts, skipped
rules); the riskiest principals and credentials; then the findings grouped by problem, each
with its message, the evidence that matters and the remediation (at most `FINDINGS_PER_RULE`
a rule, those seen most often, the rest counted in one line); the summary line last.

- `verbose` adds rule ids, finding ids, locations, every evidence entry, every finding and
  the suppressed and baselined findings one line each (otherwise only counted per problem);
- `quiet` prints the summary line only, unwrapped (one line to grep);
- `ansi` / `color` (see `ReportOptions.for_stream`) decide escape codes: a pipe or a file gets
  plain text, `NO_COLOR` keeps bold but drops colours. Rendering goes to a string through a
  rich `Console` of a fixed width, so lines never exceed `width` (80 by default) and the text
  does not depend on the environment.

Evidence: entries are shown as `label: value`; the keys in `EVIDENCE_LABELS` come first in that
order (so `minimal_scopes`, the scopes to keep of a grant with unused ones, leads), then the
rule's own keys in its order.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Collection, Sequence
from typing import Any

from rich import box
from rich.console import Console, ConsoleOptions, Group, RenderableType, RenderResult
from rich.panel import Panel
from rich.segment import Segment
from rich.table import Table
from rich.text import Text

from m2maudit.findings import Finding, ScanResult
from m2maudit.reporters.base import Reporter, ReportOptions
from m2maudit.reporters.serialize import clean_text, input_label, jsonable
from m2maudit.reporters.summary import (
    RiskRow,
    Summary,
    ordered_findings,
    percent,
    problem_order,
    problem_title,
    riskiest,
    run_notes,
    status,
    summarize,
    summary_line,
)
from m2maudit.timeutil import iso_seconds
from m2maudit.wording import counted, noun_for

SEVERITY_STYLE = {
    "critical": "bold white on red",
    "high": "bold red",
    "medium": "yellow",
    "low": "cyan",
    "info": "dim",
}
EVIDENCE_LABELS = {
    "minimal_scopes": "scopes to keep",
    "unused_scopes": "unused scopes",
    "used_scopes": "used scopes",
    "granted_scopes": "granted scopes",
}
EVIDENCE_LIMIT, EVIDENCE_LIMIT_VERBOSE = 6, 100
LIST_LIMIT, LIST_LIMIT_VERBOSE = 8, 50
VALUE_CHARS = 240
LOCATION_LIMIT = 10
# Findings shown per rule unless --verbose: those seen most often, the rest counted. A person
# reads twenty; a big log can give tens of thousands (37 000 blocks took 38 s to lay out).
FINDINGS_PER_RULE = 20
INPUT_LIMIT = 10
NARROW = 70  # below this width the riskiest tables leave out each row's problems


def make_console(options: ReportOptions) -> Console:
    """A console writing to a string, styled only if `options` says so."""
    return Console(
        file=io.StringIO(),
        width=options.width,
        force_terminal=options.ansi,
        color_system="standard" if options.ansi else None,
        no_color=not options.color,
        highlight=False,
        emoji=False,
        markup=False,
        legacy_windows=False,
        force_jupyter=False,
        force_interactive=False,
        soft_wrap=False,
        _environ={},  # COLUMNS, TERM, FORCE_COLOR... must not change the bytes
    )


def _severity(severity: str) -> Text:
    return Text(f" {severity.upper()} ", style=SEVERITY_STYLE.get(severity, ""))


def _grid() -> Table:
    grid = Table.grid(padding=(0, 1))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column(overflow="fold", ratio=1)
    return grid


def _clean(value: object, style: str = "") -> Text:
    """User data (from logs, config or rules) as inert text: no markup, no escape codes."""
    return Text(clean_text(value), style=style)


def _header(result: ScanResult, options: ReportOptions) -> RenderableType:
    grid = _grid()
    start, end = result.window
    grid.add_row("as of", iso_seconds(result.as_of) or "-")
    window = f"{iso_seconds(start)} .. {iso_seconds(end)}" if start and end else "no events"
    grid.add_row("window", window)
    # Unreadable inputs first, so that the limit never hides them.
    ordered = sorted(result.inputs, key=lambda item: not item.get("error"))
    inputs = ordered if options.verbose else ordered[:INPUT_LIMIT]
    for position, item in enumerate(inputs):
        grid.add_row("inputs" if position == 0 else "", _clean(_input_text(item)))
    if len(result.inputs) > len(inputs):
        grid.add_row("", f"... and {len(result.inputs) - len(inputs):,} more")
    title = Text(f"m2maudit {options.tool_version}", style="bold")
    title.append(" credential audit", style="")
    return Group(title, grid)


def _input_text(item: dict[str, Any]) -> str:
    if item.get("error"):
        return f"{input_label(item)} (unreadable: {item['error']})"
    if item.get("skipped"):
        return f"{input_label(item)} (skipped: {item['skipped']})"
    details = [str(item[key]) for key in ("kind", "format") if item.get(key)]
    for key, noun in (("loaded", "loaded"), ("rejected", "rejected"), ("duplicates", "dup")):
        if isinstance(item.get(key), int) and (key == "loaded" or item[key]):
            details.append(f"{item[key]:,} {noun}")
    return input_label(item) + (f" ({', '.join(details)})" if details else "")


def _severity_table(summary: Summary) -> Table:
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, padding=(0, 1), show_edge=False)
    table.add_column("")
    for severity in summary.by_severity:
        table.add_column(severity, justify="right", header_style=SEVERITY_STYLE.get(severity))
    table.add_column("total", justify="right")
    for kind in ("active", "suppressed", "baselined"):
        values = [getattr(counts, kind) for counts in summary.by_severity.values()]
        table.add_row(kind, *(f"{value:,}" for value in values), f"{sum(values):,}")
    return table


def _problem_table(summary: Summary) -> Table:
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, padding=(0, 1), show_edge=False)
    table.add_column("problem", overflow="fold")
    for kind in ("active", "suppressed", "baselined"):
        table.add_column(kind, justify="right")
    for problem, counts in summary.by_problem.items():
        table.add_row(
            _clean(problem_title(problem)),
            f"{counts.active:,}",
            f"{counts.suppressed:,}",
            f"{counts.baselined:,}",
        )
    return table


def _attribution(summary: Summary, raw: dict[str, Any]) -> RenderableType:
    if not summary.attribution:
        return Text("attribution coverage: not measured")
    actions = "?" if summary.agent_actions is None else f"{summary.agent_actions:,}"
    threshold = raw.get("min_attribution")
    line = Text(f"attribution of {actions} agent actions: ")
    for position, part in enumerate(summary.attribution):
        if position:
            line.append(", ")
        style = ""
        if isinstance(threshold, float | int) and part.share is not None:
            style = "red" if part.share < threshold else "green"
        line.append(f"{part.label} ")
        line.append(percent(part.share), style=style)
    return line


def _summary_panel(result: ScanResult, summary: Summary) -> RenderableType:
    counts = summary.counts
    parts: list[RenderableType] = []
    if counts.total == 0:
        parts.append(Text("No findings.", style="bold green"))
    else:
        parts += [_severity_table(summary), Text(""), _problem_table(summary), Text("")]
    parts.append(_attribution(summary, result.attribution))
    gate = Text(f"{counts.suppressed:,} suppressed, {counts.baselined:,} baselined, ")
    gate.append(f"{summary.failing:,} failing", style="bold red" if summary.failing else "green")
    gate.append(f" (--fail-on {summary.fail_on})")
    parts.append(gate)
    parts.extend(Text(note) for note in run_notes(result))
    parts.extend(_clean(line, style="dim") for line in _skipped_lines(result))
    return Panel(Group(*parts), title="Summary", title_align="left", box=box.ROUNDED)


def _skipped_lines(result: ScanResult) -> list[str]:
    """One line per reason the rules were skipped for: a scan without an inventory skipped
    ten rules, one line each, all saying to give one."""
    by_reason: dict[str, list[str]] = {}
    for item in sorted(result.skipped, key=lambda item: item.rule_id):
        by_reason.setdefault(item.reason, []).append(item.rule_id)
    return [f"skipped {', '.join(ids)}: {reason}" for reason, ids in by_reason.items()]


def _risk_table(title: str, rows: Sequence[RiskRow], width: int) -> Table:
    """Ranked by score (critical 10, high 6, medium 3, low 1 per active finding).

    Each row's problems go on a line of their own under its name, which so has the width
    of the table: in a column of their own they left an ARN 21 columns, cut in three."""
    table = Table(
        title=title,
        title_justify="left",
        title_style="bold",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        expand=True,
    )
    table.add_column("#", justify="right")
    table.add_column("name", overflow="fold", ratio=1, min_width=16)
    table.add_column("score", justify="right")
    table.add_column("findings", justify="right")
    table.add_column("worst")
    for position, row in enumerate(rows, start=1):
        name = _clean(row.name)
        if width >= NARROW:
            name.append("\n")
            name.append(", ".join(clean_text(problem) for problem in row.problems), style="dim")
        table.add_row(
            str(position),
            name,
            str(row.score),
            str(row.findings),
            Text(row.worst, style=SEVERITY_STYLE.get(row.worst, "")),
        )
    return table


def _value(value: Any, list_limit: int) -> str:
    plain = jsonable(value)
    if plain == []:  # an empty row read as a value left out
        return "none"
    if isinstance(plain, list):
        shown = ", ".join(_scalar(item) for item in plain[:list_limit])
        more = len(plain) - list_limit
        text = shown + (f" (+{more} more)" if more > 0 else "")
    else:
        text = _scalar(plain)
    return text if len(text) <= VALUE_CHARS else text[: VALUE_CHARS - 3] + "..."


def _scalar(value: Any) -> str:
    if isinstance(value, str):
        return value
    if value is None:
        return "-"
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def evidence_items(
    evidence: dict[str, Any], verbose: bool, stated: Sequence[str] = ()
) -> list[tuple[str, str]]:
    """The evidence lines to show: labelled keys first, capped unless verbose. A key the
    message `stated` (M2M101's sample actions) is not said again, but for the labelled keys
    (the scopes to keep: what to do, in a line of its own)."""
    first = [key for key in EVIDENCE_LABELS if key in evidence]
    rest = [key for key in evidence if key not in EVIDENCE_LABELS and key not in stated]
    keys = first + rest
    limit = EVIDENCE_LIMIT_VERBOSE if verbose else EVIDENCE_LIMIT
    list_limit = LIST_LIMIT_VERBOSE if verbose else LIST_LIMIT
    items = [
        (EVIDENCE_LABELS.get(key, key.replace("_", " ")), _value(evidence[key], list_limit))
        for key in keys[:limit]
    ]
    if len(keys) > limit:
        items.append(("", f"... {len(keys) - limit} more evidence entries (see --format json)"))
    return items


def _finding_block(
    finding: Finding, options: ReportOptions, record_files: Collection[str] = ()
) -> RenderableType:
    title = _severity(finding.severity)
    title.append(" ")
    title.append(clean_text(finding.title), style="bold")
    rows = _Rows()
    if finding.principal:
        rows.add("principal", _clean(finding.principal))
    if finding.token_id:
        rows.add("credential", _clean(finding.token_id))
    if finding.first_seen:  # calls in the logs; an inventory-only finding has none
        rows.add("seen", Text(_seen(finding)))
    elif finding.last_seen:  # no call in the logs: when the inventory says it was last used
        rows.add("last seen", Text(str(iso_seconds(finding.last_seen))))
    if finding.after_baseline:  # looks new, but the baseline held it: say why it fails
        rows.add("baseline", Text("active again: calls after the last the baseline covers"))
    rows.add("detail", _clean(finding.message))
    for label, value in evidence_items(finding.evidence, options.verbose, finding.stated):
        rows.add(clean_text(label), _clean(value))
    if finding.remediation:
        rows.add("fix", _clean(finding.remediation, style="green"))
    if options.verbose:
        rows.add(
            "rule",
            _clean(f"{finding.rule_id} {finding.rule_name} (confidence {finding.confidence})"),
        )
        rows.add("id", Text(finding.id))
        if finding.owasp_nhi:
            rows.add("owasp", _clean(", ".join(finding.owasp_nhi)))
        rows.add("at", _clean(_locations(finding, record_files)))
    return Group(title, rows)


def _seen(finding: Finding) -> str:
    """How often and when: a span, or the one instant when the first call is the last."""
    first, last = iso_seconds(finding.first_seen), iso_seconds(finding.last_seen)
    when = f"at {first}" if first == last or finding.last_seen is None else f"{first} .. {last}"
    return f"{counted(finding.count, 'time')}, {when}"


class _Rows:
    """A finding's label and value rows, indented by two, laid out as `_grid` would lay them
    out: labels in bold in a column as wide as the widest, each value wrapped beside it.

    A big report holds thousands of findings, and rich's Table measures, pads and crops
    every cell of each: 1.5 ms a finding. Here each value is wrapped once. When a label
    leaves too little room beside it (a custom rule's long evidence key on a narrow
    terminal, where the grid would drop the values), each value goes under its label.
    """

    INDENT = 2
    MIN_VALUE_WIDTH = 10

    def __init__(self) -> None:
        self.rows: list[tuple[str, Text]] = []

    def add(self, label: str, value: Text) -> None:
        self.rows.append((label, value))

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        width = options.max_width
        label_width = max((Text(label).cell_len for label, _ in self.rows), default=0)
        value_width = width - self.INDENT - label_width - 1
        if value_width < self.MIN_VALUE_WIDTH or any("\n" in label for label, _ in self.rows):
            yield from self._stacked(console, width)
            return
        for label, value in self.rows:
            for number, line in enumerate(value.wrap(console, value_width, overflow="fold")):
                head = Text(" " * self.INDENT)
                head.append(label if number == 0 else "", style="bold")
                head.pad_right(self.INDENT + label_width - head.cell_len)
                head.append(" ")
                yield from self._line(console, head, line)

    def _stacked(self, console: Console, width: int) -> RenderResult:
        """Each label on its own line, its value wrapped under it, indented two more."""
        for label, value in self.rows:
            lines = Text(label, style="bold").wrap(console, width - self.INDENT, overflow="fold")
            for line in lines if label else []:
                yield from self._line(console, Text(" " * self.INDENT), line)
            indent = self.INDENT + (2 if label else 0)
            for line in value.wrap(console, max(width - indent, 1), overflow="fold"):
                yield from self._line(console, Text(" " * indent), line)

    @staticmethod
    def _line(console: Console, head: Text, line: Text) -> RenderResult:
        yield from head.render(console)
        yield from line.render(console)
        yield Segment.line()


def _locations(finding: Finding, record_files: Collection[str]) -> str:
    shown = [loc.text(record_files) for loc in finding.locations[:LOCATION_LIMIT]]
    more = len(finding.locations) - len(shown)
    return (", ".join(shown) or "-") + (f" (+{more} more)" if more > 0 else "")


def _most_seen(findings: Sequence[Finding]) -> list[Finding]:
    """A rule's `FINDINGS_PER_RULE` findings seen most often, in report order: its findings
    share a severity, so the report's own order would show the first names alphabetically."""
    if len(findings) <= FINDINGS_PER_RULE:
        return list(findings)
    ranked = sorted(range(len(findings)), key=lambda i: -findings[i].count)
    keep = set(ranked[:FINDINGS_PER_RULE])
    return [finding for i, finding in enumerate(findings) if i in keep]


def _not_shown(console: Console, findings: Sequence[Finding], shown: int) -> None:
    """One line after a rule's findings when some were left out, saying where all are."""
    more = len(findings) - shown
    if more <= 0:
        return
    first = findings[0]
    rarer = ", each seen less often" if first.first_seen else ""
    console.print(
        Text(
            clean_text(
                f"+ {more:,} more {first.rule_id} {noun_for(more, 'finding')} "
                f"({first.title}){rarer}: all of them with --verbose, or in "
                "the json, csv or sarif report"
            ),
            style="dim",
        )
    )
    console.print()


def _quiet_line(finding: Finding) -> Text:
    line = Text(f"{status(finding)} ", style="dim")
    line.append(clean_text(f"[{finding.severity}] {finding.rule_id} {finding.title}"))
    who = finding.principal or finding.token_id
    if who:
        line.append(clean_text(f" - {who}"))
    if finding.suppression:
        line.append(clean_text(f" - reason: {finding.suppression.get('reason', '')}"), style="dim")
        extra = [
            f"{key} {finding.suppression[key]}"
            for key in ("owner", "ticket", "expires")
            if finding.suppression.get(key)
        ]
        if extra:
            line.append(clean_text(f" ({', '.join(extra)})"), style="dim")
    return line


def _problem_section(
    console: Console,
    problem: str,
    findings: Sequence[Finding],
    options: ReportOptions,
    record_files: Collection[str],
) -> None:
    active = [finding for finding in findings if status(finding) == "active"]
    quiet = [finding for finding in findings if status(finding) != "active"]
    console.rule(
        Text(f"{problem_title(problem)} ({problem}): {len(active):,} active"), align="left"
    )
    by_rule: dict[str, list[Finding]] = {}
    for finding in active:
        by_rule.setdefault(finding.rule_id, []).append(finding)
    for findings_of_rule in by_rule.values():
        shown = findings_of_rule if options.verbose else _most_seen(findings_of_rule)
        for finding in shown:
            console.print(_finding_block(finding, options, record_files))
            console.print()
        _not_shown(console, findings_of_rule, len(shown))
    if quiet and options.verbose:
        for finding in quiet:
            console.print(_quiet_line(finding))
        console.print()
    elif quiet:
        suppressed = sum(1 for finding in quiet if finding.suppressed)
        console.print(
            Text(
                f"+ {suppressed:,} suppressed, {len(quiet) - suppressed:,} baselined "
                "(listed with --verbose)",
                style="dim",
            )
        )
        console.print()


class TableReporter(Reporter):
    name = "table"
    extension = "txt"
    media_type = "text/plain"
    description = "terminal report (default): summary, riskiest principals, findings by problem"
    # The header, or with --quiet the summary line alone (`summary_line`).
    signature = re.compile(r"m2maudit(?: \S+ credential audit\r?\n|: (?:\d|no findings;))")

    def render(self, result: ScanResult, options: ReportOptions) -> str:
        console = make_console(options)
        line = summary_line(result, options.fail_on)
        if options.quiet:
            console.print(Text(f"m2maudit: {line}"), soft_wrap=True)
            return _text(console, options)
        findings = ordered_findings(result)
        summary = summarize(result, options.fail_on)
        console.print(_header(result, options))
        console.print()
        console.print(_summary_panel(result, summary))
        for title, rows in (
            ("Riskiest principals", riskiest(findings, _principal)),
            ("Riskiest credentials", riskiest(findings, _credential)),
        ):
            if rows:
                console.print(_risk_table(title, rows, options.width))
        by_problem: dict[str, list[Finding]] = {}
        for finding in findings:
            by_problem.setdefault(finding.problem, []).append(finding)
        for problem in sorted(by_problem, key=problem_order):
            _problem_section(console, problem, by_problem[problem], options, result.record_files)
        console.print(Text(f"m2maudit: {line}", style="bold"), soft_wrap=True)  # for tail -1
        return _text(console, options)


def _principal(finding: Finding) -> str | None:
    return finding.principal


def _credential(finding: Finding) -> str | None:
    return finding.token_id


def _text(console: Console, options: ReportOptions) -> str:
    """The rendered text; plain text loses rich's padding spaces at line ends."""
    file = console.file
    assert isinstance(file, io.StringIO)
    text = file.getvalue()
    if options.ansi:
        return text
    return "".join(line.rstrip() + "\n" for line in text.splitlines())
