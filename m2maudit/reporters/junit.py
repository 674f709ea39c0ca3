"""`--format junit`: JUnit XML, one test case per rule, so CI shows findings as failed checks.

- one `<testsuite name="m2maudit">` with one `<testcase classname="m2maudit.<problem>"
  name="<rule id> <rule name>">` per rule of the run, sorted by rule id;
- a case fails (`<failure type="<worst severity>">`) when its rule has active findings (not
  suppressed, not baselined); the failure text lists them, one line each;
- a rule whose only findings are suppressed or baselined passes, and says so in
  `<system-out>`;
- a skipped rule is a `<skipped message="<reason>">` case, and so is a rule that
  `--min-severity` or `--problem` left out (it was not checked at this level);
- a run `--strict` fails (a rejected record, an unreadable file) adds a `--strict` case in
  class `m2maudit.run` with an `<error>` saying why.

The XML never depends on the clock or the machine: `timestamp` is the `--as-of` instant and
every `time` is 0. Characters XML 1.0 cannot hold (control characters from hostile logs) are
replaced by U+FFFD.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Sequence

from m2maudit.findings import Finding, ScanResult
from m2maudit.reporters.base import Reporter, ReportOptions
from m2maudit.reporters.serialize import clean_text
from m2maudit.reporters.summary import (
    config_left_out,
    config_left_out_reason,
    filters_applied,
    not_audited_note,
    ordered_findings,
    rules_left_out,
    rules_of,
    status,
)
from m2maudit.timeutil import iso
from m2maudit.wording import counted

_XML_INVALID = re.compile("[^\u0009\u000a\u000d\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def xml_text(value: object) -> str:
    """Text XML can hold, with no escape sequence or bidirectional override: CI dashboards
    show it, and a terminal may too."""
    return _XML_INVALID.sub("\ufffd", clean_text(value))


def finding_line(finding: Finding) -> str:
    who = ", ".join(
        part
        for part in (
            f"principal {finding.principal}" if finding.principal else "",
            f"credential {finding.token_id}" if finding.token_id else "",
        )
        if part
    )
    where = f" ({who})" if who else ""
    return f"[{finding.severity}] {finding.message or finding.title}{where} id={finding.id}"


def _case(suite: ET.Element, classname: str, name: str) -> ET.Element:
    return ET.SubElement(
        suite, "testcase", {"classname": xml_text(classname), "name": xml_text(name), "time": "0"}
    )


def _fill_case(case: ET.Element, findings: Sequence[Finding], remediation: str) -> bool:
    """Add failure or system-out to one rule's case; return whether it failed."""
    active = [finding for finding in findings if status(finding) == "active"]
    if active:
        worst = max(active, key=lambda finding: finding.severity_rank).severity
        failure = ET.SubElement(
            case,
            "failure",
            {
                "message": xml_text(f"{counted(len(active), 'finding')}, worst {worst}"),
                "type": worst,
            },
        )
        lines = [finding_line(finding) for finding in active]
        if remediation:
            lines += ["", f"Remediation: {remediation}"]
        failure.text = "\n".join(xml_text(line) for line in lines)
    quiet = [finding for finding in findings if status(finding) != "active"]
    if quiet:
        out = ET.SubElement(case, "system-out")
        out.text = "\n".join(
            xml_text(f"{status(finding)}: {finding_line(finding)}") for finding in quiet
        )
    return bool(active)


class JunitReporter(Reporter):
    name = "junit"
    extension = "xml"
    media_type = "application/xml"
    description = "JUnit XML, one test case per rule, failed when it has active findings"
    signature = re.compile(r'\s*(?:<\?xml[^>]*\?>\s*)?<testsuites name="m2maudit"')

    def render(self, result: ScanResult, options: ReportOptions) -> str:
        findings = ordered_findings(result)
        # A rule the filters left out was not checked at this level: skipped, not passed.
        skipped = {
            rule_id: f"left out by {filters_applied(result)}" for rule_id in rules_left_out(result)
        }
        skipped |= {item.rule_id: item.reason for item in result.skipped}
        skipped |= {rule_id: config_left_out_reason(result) for rule_id in config_left_out(result)}
        rules = rules_of(result)
        suite = ET.Element(
            "testsuite", {"name": "m2maudit", "timestamp": xml_text(iso(result.as_of) or "")}
        )
        failures = skipped_count = 0
        for rule in rules:
            case = _case(suite, f"m2maudit.{rule.problem}", f"{rule.id} {rule.name}")
            own = [finding for finding in findings if finding.rule_id == rule.id]
            if rule.id in skipped and not own:
                ET.SubElement(case, "skipped", {"message": xml_text(skipped[rule.id])})
                skipped_count += 1
                continue
            failures += _fill_case(case, own, rule.remediation)
        for rule_id in sorted(set(skipped) - {rule.id for rule in rules}):
            case = _case(suite, "m2maudit.skipped", rule_id)
            ET.SubElement(case, "skipped", {"message": xml_text(skipped[rule_id])})
            skipped_count += 1
        errors = 0
        not_audited = not_audited_note(result)
        if options.strict_failure:  # the run itself failed: one case says why
            case = _case(suite, "m2maudit.run", "--strict")
            ET.SubElement(case, "error", {"message": xml_text(options.strict_failure)})
            errors = 1
        elif not_audited:  # shown, not failed: `--strict` is the gate on it
            case = _case(suite, "m2maudit.run", "inputs")
            ET.SubElement(case, "skipped", {"message": xml_text(not_audited)})
            skipped_count += 1
        counts = {
            "tests": str(len(suite)),
            "failures": str(failures),
            "errors": str(errors),
            "skipped": str(skipped_count),
            "time": "0",
        }
        suite.attrib.update(counts)
        # The common schema (Jenkins' xUnit) allows `skipped` on a suite, not on the root.
        totals = {key: value for key, value in counts.items() if key != "skipped"}
        root = ET.Element("testsuites", {"name": "m2maudit", **totals})
        root.append(suite)
        ET.indent(root, space="  ")
        body = ET.tostring(root, encoding="unicode")
        return '<?xml version="1.0" encoding="UTF-8"?>\n' + body + "\n"
