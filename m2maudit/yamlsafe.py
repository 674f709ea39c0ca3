"""The one way m2maudit reads YAML: config, rule files and YAML inventories.

Safe (plain data only: these files are untrusted), and times as ISO 8601 text. PyYAML's own
loader turns `2026-02-30` into a Python `ValueError` from `datetime`, not a YAML error, so an
impossible date stopped a scan with "internal error". As text, the code that reads the value
says what is wrong with it and where: a config expiry "not a date", an inventory time
"unparseable" on its line.

Two more refusals, each an error on its line: a key given twice in one mapping (PyYAML keeps
the last silently, so a second `thresholds:` dropped the first), and aliases that expand a
document far beyond its size (a "billion laughs" of a few hundred bytes that any code walking
the value, an error message quoting it, would expand to gigabytes).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import yaml
from yaml.constructor import ConstructorError

from m2maudit.errors import shown

_TIMESTAMP_TAG = "tag:yaml.org,2002:timestamp"
_MERGE_TAG = "tag:yaml.org,2002:merge"
# How many values aliases may add to a document beyond those written in it.
MAX_ALIAS_EXPANSION = 1_000_000


class TextTimesLoader(yaml.SafeLoader):
    """A safe loader whose timestamps are strings. Pure Python: its error marks name the
    line of a problem where libyaml's can name the end of the input."""


# libyaml's build of the same loader: a tenth of the time to read the rule pack, which every
# scan does. The bundled rules parse, so the precision of its error marks matters less there.
_FAST_BASE: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class FastTextTimesLoader(_FAST_BASE):  # type: ignore[valid-type,misc]
    """`TextTimesLoader` on libyaml's parser, when PyYAML was built with it."""


def _timestamp_as_text(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> str:
    """ISO 8601 text of what YAML reads as a time (`2025-09-01 10:00:00 +02:00`, a form
    DuckDB does not parse, becomes `2025-09-01T10:00:00+02:00`); the text as written when
    it is not a real date."""
    try:
        return loader.construct_yaml_timestamp(node).isoformat()
    except ValueError:
        return str(loader.construct_scalar(node))


for _loader in (TextTimesLoader, FastTextTimesLoader):
    _loader.add_constructor(_TIMESTAMP_TAG, _timestamp_as_text)


def load_yaml(text: str, fast: bool = False, judged: bool = True) -> Any:
    """The plain data of one YAML document; raises `yaml.YAMLError` on bad YAML.

    `judged=False` lets a key given twice and an alias bomb pass: for a glance at the head
    of a file whose records are each judged later (sniffing an inventory's format)."""
    with _reading(text, fast) as loader:
        node = loader.get_single_node()
        if node is None:
            return None
        if judged:
            judge_document(node)
        try:
            return loader.construct_document(node)
        except ValueError as exc:  # an integer of thousands of digits, past Python's limit
            raise yaml.YAMLError(f"a value YAML cannot read: {str(exc)[:80]}") from None


def compose_yaml(text: str, fast: bool = False) -> yaml.Node | None:
    """The node tree of one YAML document, for line numbers; raises `yaml.YAMLError`.

    Not judged here: the caller reads the tree node by node (`node_value`, which judges),
    so that a key given twice or an alias bomb in one record of an inventory costs that
    record only."""
    with _reading(text, fast) as loader:
        return loader.get_single_node()


@contextmanager
def _reading(text: str, fast: bool) -> Iterator[yaml.SafeLoader]:
    """A safe loader (see above) over `text`; nesting past Python's recursion limit is a
    YAML error like any other."""
    loader = _loader_for(fast)(text)
    try:
        yield loader
    except RecursionError:
        raise yaml.YAMLError("values nested too deep") from None
    finally:
        loader.dispose()


def node_value(node: yaml.Node) -> Any:
    """The plain data of one node of a composed document."""
    return load_yaml(yaml.serialize(node))


def judge_document(root: yaml.Node) -> None:
    """Raise on a key given twice in one mapping, on an alias used inside its own anchor,
    and when aliases make the document hold far more values than it writes.

    Judged on the tree as written, before any merge (`<<`) is applied: a merge may override
    a key, and PyYAML rewrites merged mappings in place as it builds them. Sizes are counted
    without expanding: a node's is one plus its children's, each node's computed once (an
    alias is the same node object as its anchor)."""
    sizes: dict[int, int] = {}
    written: set[int] = set()

    def size(node: yaml.Node) -> int:
        if id(node) in sizes:
            return sizes[id(node)]
        if id(node) in written:  # an anchor used inside itself: a value without end
            raise ConstructorError(None, None, "an alias refers to itself", node.start_mark)
        written.add(id(node))
        children: list[yaml.Node] = []
        if isinstance(node, yaml.SequenceNode):
            children = list(node.value)
        elif isinstance(node, yaml.MappingNode):
            _refuse_duplicate_keys(node)
            children = [item for pair in node.value for item in pair]
        total = 1 + sum(size(child) for child in children)
        sizes[id(node)] = total
        if total > len(written) + MAX_ALIAS_EXPANSION:
            raise ConstructorError(
                None,
                None,
                f"aliases expand this document beyond {MAX_ALIAS_EXPANSION:,} more values "
                "(a YAML alias bomb?)",
                node.start_mark,
            )
        return total

    size(root)


def _refuse_duplicate_keys(node: yaml.MappingNode) -> None:
    seen: set[tuple[str, str]] = set()
    for key_node, _ in node.value:
        if key_node.tag == _MERGE_TAG or not isinstance(key_node, yaml.ScalarNode):
            continue
        key = (key_node.tag, key_node.value)
        if key in seen:
            raise ConstructorError(
                "while reading a mapping",
                node.start_mark,
                f"the key {shown(key_node.value)} is given twice; only one may be",
                key_node.start_mark,
            )
        seen.add(key)


def _loader_for(fast: bool) -> type[yaml.SafeLoader]:
    return FastTextTimesLoader if fast else TextTimesLoader
