"""The one way m2maudit reads YAML: config, rule files and YAML inventories.

Safe (plain data only: these files are untrusted), and times as ISO 8601 text. PyYAML's own
loader turns `2026-02-30` into a Python `ValueError` from `datetime`, not a YAML error, so an
impossible date stopped a scan with "internal error". As text, the code that reads the value
says what is wrong with it and where: a config expiry "not a date", an inventory time
"unparseable" on its line.
"""

from __future__ import annotations

from typing import Any

import yaml

_TIMESTAMP_TAG = "tag:yaml.org,2002:timestamp"


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


TextTimesLoader.add_constructor(_TIMESTAMP_TAG, _timestamp_as_text)
FastTextTimesLoader.add_constructor(_TIMESTAMP_TAG, _timestamp_as_text)


def load_yaml(text: str, fast: bool = False) -> Any:
    """The plain data of one YAML document; raises `yaml.YAMLError` on bad YAML."""
    return yaml.load(text, Loader=_loader_for(fast))  # a safe loader (see above)


def compose_yaml(text: str, fast: bool = False) -> yaml.Node | None:
    """The node tree of one YAML document, for line numbers; raises `yaml.YAMLError`."""
    return yaml.compose(text, Loader=_loader_for(fast))


def node_value(node: yaml.Node) -> Any:
    """The plain data of one node of a composed document."""
    return load_yaml(yaml.serialize(node))


def _loader_for(fast: bool) -> type[yaml.SafeLoader]:
    return FastTextTimesLoader if fast else TextTimesLoader
