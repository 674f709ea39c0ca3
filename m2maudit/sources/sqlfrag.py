"""SQL fragments shared by adapters: typed reads of JSON values, times, lists, outcomes.

Each function takes a SQL expression and returns a SQL expression, so adapters compose them
into one vectorized SELECT instead of looping over records.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

from m2maudit.secrets import (
    LEAK_TEXT,
    SECRET_TEXTS,
    all_secrets_sql,
    json_as_read_sql,
    leaked_secret_fp_sql,
    leaked_secret_kind_sql,
    secret_prefilter_sql,
    secret_texts_sql,
)


def json_path(field: str) -> str:
    """A field name or dotted path (`user.name`) as a JSON path; `$...` is taken as given."""
    if field.startswith("$"):
        return field
    return "$" + "".join('."' + part.replace('"', '\\"') + '"' for part in field.split("."))


def path_literal(field: str) -> str:
    return "'" + json_path(field).replace("'", "''") + "'"


def is_composite(value: str) -> str:
    """True when a JSON value is an object or array (where a scalar was expected)."""
    return f"coalesce(json_type({value}) IN ('OBJECT', 'ARRAY'), false)"


def json_text(value: str) -> str:
    """A JSON scalar as text (numbers and booleans too); objects, arrays and null give NULL."""
    return (
        f"CASE WHEN json_type({value}) IN ('OBJECT', 'ARRAY', 'NULL') THEN NULL "
        f"ELSE nullif(trim({value} ->> '$'), '') END"
    )


# 2000-01-01T00:00:00Z. An epoch number before it is a counter, an offset or a typo, not
# the time of a call or of a credential: read as a time it would load, silently, as 1970.
EARLIEST_EPOCH_SECONDS = 946_684_800


def epoch_to_timestamp(number: str) -> str:
    """Epoch seconds, milliseconds, microseconds or nanoseconds, told apart by magnitude;
    NULL (so the record says "unparseable") before `EARLIEST_EPOCH_SECONDS`."""
    seconds = (
        f"CASE WHEN abs({number}) >= 1e20 THEN NULL "
        f"WHEN abs({number}) >= 1e17 THEN {number} / 1e9 "
        f"WHEN abs({number}) >= 1e14 THEN {number} / 1e6 "
        f"WHEN abs({number}) >= 1e11 THEN {number} / 1e3 "
        f"ELSE {number} END"
    )
    return f"CASE WHEN ({seconds}) >= {EARLIEST_EPOCH_SECONDS} THEN to_timestamp({seconds}) END"


def text_timestamp(text: str) -> str:
    """ISO 8601 (any offset; none means UTC) or an epoch number written as text, within the
    years a report can write (see `TIME_MACROS`)."""
    return f"m2m_time_text({text})"


# The range of times a record may hold: `10000-01-01`, or `9999-12-31T23:30:00-01:00`, loaded
# and then stopped the scan, as Python (and every report) writes years 1 to 9999 only.
EARLIEST_TIME = "TIMESTAMPTZ '0001-01-01 00:00:00+00'"
LATEST_TIME = "TIMESTAMPTZ '9999-12-31 23:59:59.999999+00'"


def _time_text_macro() -> str:
    """`m2m_time_text(t)`: a time's text parsed. ISO 8601 first: the usual case, and no
    number parses as one (COALESCE evaluates each argument only for the rows still NULL, so
    the regex runs on the rest alone). DuckDB reads `T` and `Z` in capitals only; RFC 3339
    allows `t` and `z` too. A time starts with a digit: DuckDB also reads `epoch`,
    `infinity` and `-infinity`, which no log means."""
    epoch = (
        "CASE WHEN regexp_full_match(t, '-?[0-9]+(\\.[0-9]+)?') "
        f"THEN {epoch_to_timestamp('try_cast(t AS DOUBLE)')} END"
    )
    parsed = f"coalesce(try_cast(t AS TIMESTAMPTZ), {epoch}, try_cast(upper(t) AS TIMESTAMPTZ))"
    return (
        "CREATE OR REPLACE TEMP MACRO m2m_time_text(t) AS "
        "CASE WHEN t IS NULL OR NOT (left(ltrim(t), 1) BETWEEN '0' AND '9') THEN NULL "
        f"ELSE m2m_time_in_range({parsed}) END"
    )


# Macros the mappings call, made on the store's connection when it opens (`Store.open`): a
# macro is named in a statement, not written out at each use, which kept the mappings'
# statements (and DuckDB's time to plan them) small. DuckDB computes a macro's argument
# once, however often the body names it.
TIME_MACROS = (
    "CREATE OR REPLACE TEMP MACRO m2m_time_in_range(x) AS "
    f"CASE WHEN x BETWEEN {EARLIEST_TIME} AND {LATEST_TIME} THEN x END",
    _time_text_macro(),
)


def json_timestamp(value: str) -> str:
    """A JSON value holding an ISO 8601 string or an epoch number."""
    return (
        f"CASE WHEN json_type({value}) IN ('BIGINT', 'UBIGINT', 'DOUBLE') "
        f"THEN {epoch_to_timestamp(f'try_cast({value} AS DOUBLE)')} "
        f"WHEN json_type({value}) = 'VARCHAR' THEN {text_timestamp(json_text(value))} END"
    )


def bad_timestamp(value: str, parsed: str | None = None) -> str:
    """True when a JSON value is present but does not hold a time; `parsed` names the
    value's `json_timestamp` when a column already holds it."""
    return (
        f"(json_type({value}) IS NOT NULL AND json_type({value}) <> 'NULL' "
        f"AND {parsed or json_timestamp(value)} IS NULL)"
    )


def split_list(text: str) -> str:
    """`"a b,c"` -> `['a', 'b', 'c']`: space- or comma-separated text as a list."""
    return f"list_filter(string_split_regex(trim({text}), '[\\s,]+'), lambda s: s <> '')"


def json_string_list(value: str) -> str:
    """A JSON array of strings, or one space/comma-separated string, as VARCHAR[]."""
    return (
        f"CASE json_type({value}) "
        f"WHEN 'ARRAY' THEN list_filter(from_json({value}, '[\"VARCHAR\"]'), "
        f"lambda s: s IS NOT NULL AND trim(s) <> '') "
        f"WHEN 'VARCHAR' THEN {split_list(json_text(value))} END"
    )


def bad_string_list(value: str) -> str:
    return (
        f"coalesce(json_type({value}) IN ('OBJECT', 'BIGINT', 'UBIGINT', 'DOUBLE', 'BOOLEAN'), "
        f"false)"
    )


def outcome(status_text: str) -> str:
    """Normalise an HTTP code or a status word to success | failure | unknown."""
    return (
        f"CASE WHEN {status_text} IS NULL THEN 'unknown' "
        f"WHEN regexp_full_match({status_text}, '[23][0-9][0-9]') THEN 'success' "
        f"WHEN regexp_full_match({status_text}, '[45][0-9][0-9]') THEN 'failure' "
        f"WHEN regexp_matches(lower({status_text}), "
        f"'^(success|succeeded|ok|allow|allowed|approved|granted|true)') THEN 'success' "
        f"WHEN regexp_matches(lower({status_text}), "
        f"'^(fail|failed|failure|error|denied|deny|forbidden|unauthori[sz]ed|rejected|false)') "
        f"THEN 'failure' ELSE 'unknown' END"
    )


# A run of this many characters of a key's alphabet, with a letter in it, looks like a key:
# a 40-character GitHub token or AWS secret, a JWT, an API key. Dates, numbers and field
# names break into shorter runs.
_KEY_LIKE_RUN = "[A-Za-z0-9+/=_]{16,}"
SHOWN_WIDTH = 40


def shown(text: str) -> str:
    """A record's value quoted in a reject reason (NULL: `empty`), cut to `SHOWN_WIDTH`
    characters, or not quoted at all when it could be a secret.

    A reason is printed and kept in `ingest_errors`: a bad value is worth seeing, a
    secret pasted into a time field is not. Cutting alone is no protection (a 40-character
    key cut at 39 is still a key), so a value with a secret's shape is not quoted. The shape
    is the leak check's cheap first test (its needles: `eyJ`, `ghp_`, `password`, ...), not
    the whole check: a mapping quotes several fields, and the whole check for each made the
    SQL too long to plan quickly.
    """
    hidden = (
        f"{secret_prefilter_sql(text)} OR (regexp_matches({text}, '{_KEY_LIKE_RUN}') "
        f"AND regexp_matches({text}, '[A-Za-z]'))"
    )
    return (
        f"CASE WHEN {text} IS NULL THEN 'empty' "
        f"WHEN {hidden} THEN '[hidden: it could be a secret]' "
        f"WHEN length({text}) > {SHOWN_WIDTH} THEN left({text}, {SHOWN_WIDTH}) || '...' "
        f"ELSE {text} END"
    )


def leak_check(text: str) -> str:
    """The kind of secret found in clear in `text`, or NULL."""
    return leaked_secret_kind_sql(text)


def regex_any(value: str, patterns: Sequence[str]) -> str:
    """True when `value` fully matches any of the given regular expressions, ignoring case.

    The one reading of the config's name patterns (README: "full match, case-insensitive"),
    shared by the adapters, the token classifier and the rule views.
    """
    if not patterns:
        return "false"
    joined = "|".join(f"(?:{p})" for p in patterns)
    return f"coalesce(regexp_full_match({value}, {sql_regex_literal(joined)}, 'i'), false)"


PRINCIPAL_TYPES = ("agent", "service", "human", "unknown")


def stated_principal_type(text: str) -> str:
    """A log's or inventory's `principal_type`, lower-cased; any other word ("robot",
    "workload") is `unknown`, so the kind is inferred from the name rather than the whole
    record lost for one odd label."""
    return (
        f"CASE WHEN {text} IS NULL THEN NULL WHEN lower({text}) IN {PRINCIPAL_TYPES} "
        f"THEN lower({text}) ELSE 'unknown' END"
    )


# What loggers and people write for "no value" (a Go template's `-`, JavaScript's `undefined`,
# a NULL printed as text). As an id it would count as one: a trace every call shares, a
# person behind every call.
PLACEHOLDER_WORDS = (
    "-",
    "--",
    "n/a",
    "na",
    "none",
    "null",
    "nil",
    "undefined",
    "unknown",
    "not set",
)


def placeholder_as_null(text: str) -> str:
    """SQL: a text id, NULL when it is a placeholder: a word of `PLACEHOLDER_WORDS` (any
    case), or zeros and dashes alone (W3C's all-zero trace id, which its spec calls invalid,
    the nil UUID, `0`). Long values, nearly all, pass on a length test."""
    return (
        f"CASE WHEN {text} IS NULL OR length({text}) > 64 THEN {text} "
        f"WHEN (left({text}, 1) IN ('0', '-') AND trim({text}, '0-') = '') "
        f"OR (length({text}) <= 9 AND lower({text}) IN {text_list(PLACEHOLDER_WORDS)}) "
        f"THEN NULL ELSE {text} END"
    )


def kind_by_name(value: str, kinds: Sequence[tuple[str, Sequence[str]]]) -> str:
    """The first kind whose patterns `value` fully matches (`Config.name_kinds`), else
    'unknown' (a NULL name too)."""
    tests = " ".join(f"WHEN {regex_any(value, patterns)} THEN '{kind}'" for kind, patterns in kinds)
    return f"CASE {tests} ELSE 'unknown' END"


def opens_object(text: str) -> str:
    """SQL: whether a line opens a JSON object (`{` after blanks or a byte-order mark), the
    careful read's first test of a line as a record."""
    return f"regexp_matches({text}, '^[ \\t\\r\\n\\x{{FEFF}}]*[{{]')"


def sql_regex_literal(pattern: str) -> str:
    """A regular expression as a SQL string literal (the config checked users' patterns
    against RE2, which runs them)."""
    return "'" + pattern.replace("'", "''") + "'"


class JsonFields:
    """Named fields of a record, all read with ONE `json_extract` call per record.

    A field may be spelled several ways (a vendor's own camelCase and a pipeline's lower-cased
    copy, a nested and a flat form): the first spelling present in a record wins. Adapters use
    `prelude()` as `map_records(prelude=...)`, then `self[name]` for the JSON value and
    `text(name)` for it as text.
    """

    def __init__(self, spec: dict[str, str | tuple[str, ...]], var: str = "v") -> None:
        self.var = var
        self._paths: list[str] = []
        self._slots: dict[str, list[int]] = {}
        for name, spellings in spec.items():
            alternatives = (spellings,) if isinstance(spellings, str) else spellings
            self._slots[name] = [self._slot(json_path(path)) for path in alternatives]

    def _slot(self, path: str) -> int:
        if path not in self._paths:
            self._paths.append(path)
        return self._paths.index(path) + 1

    def prelude(self) -> dict[str, str]:
        paths = ", ".join("'" + path.replace("'", "''") + "'" for path in self._paths)
        return {self.var: f"json_extract(rec, [{paths}])"}

    def __getitem__(self, name: str) -> str:
        """The JSON value of the first spelling that is present and not JSON null."""
        slots = [f"{self.var}[{index}]" for index in self._slots[name]]
        if len(slots) == 1:
            return slots[0]
        present = [f"CASE WHEN json_type({slot}) <> 'NULL' THEN {slot} END" for slot in slots]
        return "coalesce(" + ", ".join(present) + ")"

    def text(self, name: str) -> str:
        """The first spelling that holds non-blank text (a number or boolean counts as text)."""
        slots = [f"{self.var}[{index}]" for index in self._slots[name]]
        return "coalesce(" + ", ".join(json_text(slot) for slot in slots) + ")"

    def timestamp(self, name: str) -> str:
        """The first spelling that parses as a time (ISO 8601 or epoch s/ms/us/ns)."""
        slots = [f"{self.var}[{index}]" for index in self._slots[name]]
        return "coalesce(" + ", ".join(json_timestamp(slot) for slot in slots) + ")"

    def present(self, name: str) -> str:
        """True when any spelling holds a value other than JSON null."""
        return f"coalesce(json_type({self[name]}) <> 'NULL', false)"


def json_number(value: str) -> str:
    """A JSON number, or a string holding one, as DOUBLE; anything else is NULL."""
    return (
        f"CASE WHEN json_type({value}) IN ('BIGINT', 'UBIGINT', 'DOUBLE') "
        f"THEN try_cast({value} AS DOUBLE) "
        f"WHEN json_type({value}) = 'VARCHAR' THEN try_cast({json_text(value)} AS DOUBLE) END"
    )


def json_array_find(value: str, key: str, wanted: str) -> str:
    """The first element of a JSON array whose `key` equals the SQL text `wanted`, as JSON."""
    return (
        f"CASE WHEN json_type({value}) = 'ARRAY' THEN list_filter("
        f"json_extract({value}, '$[*]'), lambda e: e ->> '{key}' = {wanted})[1] END"
    )


def add_seconds(instant: str, seconds: str) -> str:
    """`instant + seconds` for a positive number of seconds; NULL when either is missing or <= 0."""
    return (
        f"CASE WHEN {instant} IS NOT NULL AND {seconds} > 0 AND {seconds} < 1e11 "
        f"THEN {instant} + to_seconds(CAST({seconds} AS BIGINT)) END"
    )


def member(value: str, field: str) -> str:
    """A member (or dotted path) of a JSON value, as JSON."""
    return f"({value} -> {path_literal(field)})"


def text_list(values: tuple[str, ...] | list[str]) -> str:
    """`('a', 'b')` for `x IN ...`, from constants m2maudit controls."""
    return "(" + ", ".join("'" + value.replace("'", "''") + "'" for value in values) + ")"


# --- Shared by the vendor adapters (CloudTrail, Kubernetes, GCP, ...) -------------------------


@dataclass(frozen=True)
class Slots:
    """Named JSON paths read with one `json_extract`, so each record is parsed once.

    A name may list alternative paths (a renamed or lower-cased field, a fallback field); its
    slot is the first alternative holding a non-null value.
    """

    paths: tuple[str, ...]
    positions: Mapping[str, tuple[int, ...]]

    def extract(self, source: str) -> str:
        """SQL: the list of every path's value in `source` (a JSON[]; index it with `get`)."""
        return f"json_extract({source}, [{', '.join(path_literal(p) for p in self.paths)}])"

    def get(self, name: str, var: str = "v") -> str:
        """SQL: the JSON value of slot `name` in the list `var` made by `extract`."""
        return first_present([f"{var}[{index}]" for index in self.positions[name]])

    def named_columns(self, json_names: Collection[str], var: str = "v") -> dict[str, str]:
        """A prelude layer naming every slot: `j_NAME` keeps the JSON value for `json_names`
        (objects, times), `t_NAME` is the text of every other slot. Names starting with `_`
        (envelope probes) are left out."""
        return {
            (f"j_{name}" if name in json_names else f"t_{name}"): (
                self.get(name, var) if name in json_names else json_text(self.get(name, var))
            )
            for name in self.positions
            if not name.startswith("_")
        }


def json_slots(fields: Mapping[str, str | Sequence[str]]) -> Slots:
    """Number the paths of `fields` (name -> path or alternative paths; `$...` JSON paths)."""
    paths: list[str] = []
    positions: dict[str, tuple[int, ...]] = {}
    for name, alternatives in fields.items():
        options = (alternatives,) if isinstance(alternatives, str) else tuple(alternatives)
        indexes = []
        for path in dict.fromkeys(options):
            if path not in paths:
                paths.append(path)
            indexes.append(paths.index(path) + 1)
        positions[name] = tuple(indexes)
    return Slots(tuple(paths), positions)


def lowercase_variants(path: str, first_key_only: bool = False) -> tuple[str, ...]:
    """`path` and its lower-cased twin, for exports that lower-case field names (Athena,
    CloudTrail Lake, some SIEM data lakes); `first_key_only` lowers the top-level key only."""
    if first_key_only:
        match = re.match(r"^(\$\.)([A-Za-z_]+)(.*)$", path)
        lowered = match.group(1) + match.group(2).lower() + match.group(3) if match else path
    else:
        lowered = path.lower()
    return (path,) if lowered == path else (path, lowered)


def first_present(values: Sequence[str]) -> str:
    """SQL: the first JSON value that is neither missing nor JSON `null`."""
    if len(values) == 1:
        return values[0]
    return "coalesce(" + ", ".join(f"nullif({v}, 'null'::JSON)" for v in values) + ")"


def json_first_text(value: str) -> str:
    """A JSON array's first element as text, or a scalar as text (Kubernetes `user.extra`
    values are lists of strings)."""
    first = json_text(f"({value} -> '$[0]')")
    return f"CASE WHEN json_type({value}) = 'ARRAY' THEN {first} ELSE {json_text(value)} END"


def matches_any(values: Sequence[str], patterns: Sequence[str]) -> str:
    """True when any of the text `values` fully matches any pattern, ignoring case (so the
    default `.*agent.*` also names a `ResearchAgent` role)."""
    if not patterns or not values:
        return "false"
    return "(" + " OR ".join(regex_any(value, patterns) for value in values) + ")"


def machine_kind(name: str, agent_patterns: Sequence[str], infrastructure: Sequence[str]) -> str:
    """SQL: the kind of a caller a vendor log names as a machine (a service principal, an
    app, an AppRole): 'agent' when its name fully matches `agent_patterns` and is not the
    platform's own daemon (`infrastructure_patterns`), else 'service'. Vendor logs tell
    machines from people, not AI agents from other services: only the name can, as it does
    for a name in a generic log (`Config.name_kinds`)."""
    return (
        f"CASE WHEN {matches_any([name], infrastructure)} THEN 'service' "
        f"WHEN {matches_any([name], agent_patterns)} THEN 'agent' ELSE 'service' END"
    )


def json_timestamp_any(value: str, formats: Sequence[str]) -> str:
    """`json_timestamp`, then the given `strptime` formats (read as UTC) for vendor oddities
    such as CloudTrail's `Oct 2, 2019, 11:12:29 PM`."""
    listed = ", ".join("'" + f.replace("'", "''") + "'" for f in formats)
    text = json_text(value)
    # Only a text with a digit: DuckDB's `strptime` reads `epoch` as 1970 whatever the format.
    vendor = (
        f"CASE WHEN regexp_matches({text}, '[0-9]') "
        f"THEN m2m_time_in_range(timezone('UTC', try_strptime({text}, [{listed}]))) END"
    )
    return f"coalesce({json_timestamp(value)}, {vendor})"


def leak_columns(scope: str = LEAK_TEXT, found_otherwise: str | None = None) -> dict[str, str]:
    """The `leaked_secret`, `leaked_secret_fp` and `leaked_secrets` columns for a record's
    text `scope` (by default what `map_records(leak_scope=...)` made of the record's JSON):
    the first secret, and every secret (see `all_secrets_sql`).

    `found_otherwise`: a column listing secrets an adapter knows by where they are, not by
    their look (`kind:fingerprint`; a Kubernetes Secret's values are base64, which no
    pattern tells from any other text). They come after those the patterns find.
    """
    texts = {
        SECRET_TEXTS: f"CASE WHEN leaked_secret IS NOT NULL THEN {secret_texts_sql(scope)} END"
    }
    columns = {
        "leaked_secret": leak_check(scope),
        "leaked_secret_fp": (
            f"CASE WHEN leaked_secret IS NOT NULL THEN {leaked_secret_fp_sql(scope)} END"
        ),
        "leaked_secrets": (
            "CASE WHEN leaked_secret IS NOT NULL THEN "
            f"{all_secrets_sql(scope, 'leaked_secret', 'leaked_secret_fp')} END"
        ),
    }
    if found_otherwise is None:
        return {**columns, **texts}
    first = f"{found_otherwise}[1]"
    return {
        "leaked_secret": (f"coalesce({columns['leaked_secret']}, split_part({first}, ':', 1))"),
        "leaked_secret_fp": (
            f"CASE WHEN leaked_secret IS NOT NULL THEN "
            f"coalesce({leaked_secret_fp_sql(scope)}, split_part({first}, ':', 2)) END"
        ),
        "leaked_secrets": (
            "CASE WHEN leaked_secret IS NOT NULL THEN list_sort(list_distinct(list_concat("
            f"{all_secrets_sql(scope, 'leaked_secret', 'leaked_secret_fp')}, "
            f"coalesce({found_otherwise}, [])))) END"
        ),
        **texts,
    }


def with_secrets_sql(query: str, text: str) -> str:
    """`query`'s rows with `leaked_secrets` (`leak_columns`) of `text`, SQL over the query's
    columns read as the leak check reads a record (`json_as_read_sql`). For a few rows (the
    lines ingest rejected): the columns name each other in one SELECT, which DuckDB expands,
    so each row's text is searched more than once."""
    columns = ", ".join(f"{sql} AS {name}" for name, sql in leak_columns("_t").items())
    return (
        "SELECT * EXCLUDE (_t, leaked_secret, leaked_secret_fp) FROM ("
        f"SELECT *, {columns} FROM (SELECT *, {json_as_read_sql(text)} AS _t FROM ({query}) _q)"
        " _t1) _t2"
    )


def json_kind_fast(value: str) -> str:
    """`json_type` of a value `json_extract` returned, read from its first character.

    `json_extract` writes compact JSON, so the first character tells the type; this avoids a
    JSON parse per field per event on the hot path (numbers: BIGINT or DOUBLE only).
    """
    return (
        f"CASE WHEN {value} IS NULL THEN NULL ELSE CASE left({value}, 1) "
        f"WHEN '{{' THEN 'OBJECT' WHEN '[' THEN 'ARRAY' "
        f"WHEN '\"' THEN 'VARCHAR' WHEN 'n' THEN 'NULL' WHEN 't' THEN 'BOOLEAN' "
        f"WHEN 'f' THEN 'BOOLEAN' WHEN '' THEN NULL "
        f"ELSE CASE WHEN regexp_matches({value}, '[.eE]') THEN 'DOUBLE' ELSE 'BIGINT' END END END"
    )


def json_text_fast(value: str, kind: str) -> str:
    """A JSON scalar as text, given its kind; a string without escapes is just unquoted.

    Not trimmed: pass the result through `trim_padded` in a later layer.
    """
    return (
        f"CASE WHEN {kind} IN ('OBJECT', 'ARRAY', 'NULL') THEN NULL "
        f"WHEN {kind} = 'VARCHAR' THEN CASE WHEN contains({value}, '\\') "
        f"THEN {value} ->> '$' ELSE (({value})::VARCHAR)[2:-2] END "
        f"ELSE ({value})::VARCHAR END"
    )


def trim_padded(text: str) -> str:
    """`nullif(trim(text), '')`, but trimming only text that starts or ends with a space.

    `trim` copies every value it sees, and costs about two seconds per million events over
    fifteen fields; almost no value is padded.
    """
    return (
        f"nullif(CASE WHEN starts_with({text}, ' ') OR ends_with({text}, ' ') "
        f"THEN trim({text}) ELSE {text} END, '')"
    )
