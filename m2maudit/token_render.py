"""The rich panel `m2maudit token inspect` prints: header, claims, chain, signature, problems.

Presentation only; every fact comes from `token_inspect.Inspection`. All text from the token
is printed as plain `Text` with control characters and bidirectional overrides escaped, so a
claim such as `[red]`, an ANSI escape sequence or U+202E is shown, not obeyed by rich or the
terminal.
"""

from __future__ import annotations

import json
import re
from typing import Any

from rich.console import Console, Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text
from rich.tree import Tree

from m2maudit.token_inspect import Inspection
from m2maudit.wording import counted

_STATUS_STYLE = {"valid": "green", "invalid": "bold red", "not checked": "yellow"}
_MAX_VALUE_CHARS = 300
# Control characters, and the bidirectional overrides that make text read otherwise than it is.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def plain(text: str, style: str = "") -> Text:
    """Token-derived text, safe to print: no markup, control characters as `\\xNN`, overrides
    as `\\u202e`."""
    return Text(_CONTROL.sub(_escaped, text), style=style)


def _escaped(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def _value_text(value: Any) -> str:
    if isinstance(value, str):
        text = value
    elif isinstance(value, list) and all(isinstance(item, str) for item in value):
        text = " ".join(value) if value else "[]"
    else:
        text = json.dumps(value, ensure_ascii=False)
    if len(text) > _MAX_VALUE_CHARS:
        text = text[:_MAX_VALUE_CHARS] + f"... ({len(text)} characters)"
    return text


def _members_table(title: str, members: dict[str, Any], notes: dict[str, str]) -> Table:
    table = Table(title=title, title_justify="left", show_header=False, box=None, expand=False)
    table.add_column("name", style="bold", no_wrap=True)
    table.add_column("value", overflow="fold")
    for name, value in members.items():
        shown = notes.get(name, _value_text(value))
        table.add_row(plain(name), plain(shown))
    return table


def _claim_notes(inspection: Inspection) -> dict[str, str]:
    """Times as UTC plus `expires in 14 min`; `act` points at the tree drawn below."""
    notes = {t.name: f"{t.utc}  ({t.relative})" for t in inspection.times}
    depth = inspection.row.chain_depth or 0
    if depth and (inspection.decoded.claims or {}).get("act") is not None:
        notes["act"] = f"delegation chain of {counted(depth, 'actor')} (below)"
    return notes


def chain_tree(inspection: Inspection) -> Tree:
    """Root subject, then the earliest actor, down to the current actor (human -> agent -> tool)."""
    row = inspection.row
    root = Tree(plain(f"{row.root_subject or '(no sub)'}  [{row.subject_kind}]  subject"))
    node = root
    chain = row.act_chain or []
    seen: set[str] = set()
    for position, actor in enumerate(reversed(chain)):
        label = plain(actor)
        if position == len(chain) - 1:
            label.append("  current actor", style="cyan")
        if actor in seen:
            label.append("  repeated: cycle", style="bold red")
        if actor == row.chain_actor_not_allowed:
            label.append("  not in may_act", style="bold red")
        seen.add(actor)
        node = node.add(label)
    if row.may_act is not None:
        root.add(plain(f"may_act: {', '.join(row.may_act) or '(nobody)'}", style="dim"))
    return root


def _problems(inspection: Inspection) -> RenderableType:
    if not inspection.problems:
        return Text("No problem this token shows by itself.", style="green")
    table = Table(title="Problems", title_justify="left", show_header=False, box=None)
    table.add_column("problem", style="bold yellow", no_wrap=True)
    table.add_column("message", overflow="fold")
    for problem in inspection.problems:
        table.add_row(plain(problem.problem), plain(problem.message))
    return table


def render_inspection(inspection: Inspection) -> Panel:
    row = inspection.row
    signature = Text("signature: ")
    signature.append(
        inspection.signature.status, style=_STATUS_STYLE.get(inspection.signature.status, "")
    )
    signature.append(plain(f" ({inspection.signature.detail})"))
    parts: list[RenderableType] = [
        _members_table("Header", inspection.decoded.header or {}, {}),
        Text(""),
        _members_table("Claims", inspection.decoded.claims or {}, _claim_notes(inspection)),
        Text(""),
        Text("Delegation", style="italic"),
        chain_tree(inspection),
        Text(""),
        signature,
    ]
    if row.decode_error:
        parts.append(plain(f"decode_error: {row.decode_error}", style="red"))
    parts += [Text(""), _problems(inspection)]
    title = Text(
        f"token {row.token_fp}  ({row.token_length} bytes, as of "
        f"{inspection.as_of.strftime('%Y-%m-%dT%H:%M:%SZ')})"
    )
    return Panel(Group(*parts), title=title, title_align="left", expand=False)


def print_inspection(console: Console, inspection: Inspection) -> None:
    console.print(render_inspection(inspection))
