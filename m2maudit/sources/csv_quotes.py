"""Which physical lines of a CSV file continue a quoted cell, as DuckDB's CSV reader sees them.

DuckDB numbers a CSV file's records, not its lines, so staging needs to know which lines
belong to a record that began on an earlier line: the lines of a quoted cell holding line
breaks. Counting quotes per line is not enough. To DuckDB a quote opens a cell only at the
start of a field (after one space at most); `5" screen` is text, and `""` inside a quoted cell
is one quote.

Each line that holds a quote is judged twice, in SQL: does it end inside a quoted cell if it
began outside one, and if it began inside one? Lines without a quote keep the state they
begin in. The state at each line then follows from the last line that sets it whatever it
began in, and the number of lines since that flip it. The rules mirror DuckDB's reader as
used by `staging.stage_csv` (quote and escape `"`, `strict_mode` on).
"""

from __future__ import annotations

import re

# A quoted cell's inside: anything but a lone quote.
_INSIDE = '(?:[^"]|"")*'
# A line with an odd number of quotes. Without one, a cell spans lines only where a quote
# inside a field shares a line with a cell's opening or closing quote; staging then sees
# DuckDB read fewer rows than there are lines. Judging every line that holds a quote, as a
# CSV with every cell quoted has, would cost 12 % of reading it.
_ODD = """(strlen(line) - strlen(replace(line, '"', ''))) % 2 = 1"""


def _line_patterns(delimiter: str) -> dict[str, str]:
    """RE2 patterns for a whole line: how it ends, given how it began."""
    d = re.escape(delimiter)
    # DuckDB takes one space before a cell's opening quote (not two, not a tab). Text after
    # its closing quote (spaces, or `"c"d`, which makes a row DuckDB rejects) runs to the
    # next delimiter, quotes in it are text, and the row goes on: `"c"d,"x` opens a cell.
    after_closing = f'(?:[^"{d}][^{d}]*)?'
    quoted = f' ?"{_INSIDE}"{after_closing}'
    unquoted = f'(?:[^"{d} ][^{d}]*| (?:[^"{d}][^{d}]*)?)?'
    field = f"(?:{quoted}|{unquoted})"
    opened = f' ?"{_INSIDE}'  # a quoted cell that goes on past the line's end
    fields = f"(?:{d}{field})*"
    return {
        "opens_from_outside": f"(?:{field}{d})*{opened}",
        "stays_inside": _INSIDE,
        "reopens_from_inside": f'{_INSIDE}"{after_closing}{fields}{d}{opened}',
    }


def _sql_regex(pattern: str) -> str:
    return "'" + pattern.replace("'", "''") + "'"


def any_odd_line_sql(lines: str) -> str:
    """A query of one value: whether `lines(line)` has a line with an odd number of quotes."""
    return f"SELECT coalesce(bool_or({_ODD}), false) FROM {lines}"


def judged_lines_sql(lines: str, delimiter: str, any_odd_line: bool = True) -> str:
    """A query of `lines(source_line, line)`: for each line with a quote, `p` (its line) and
    whether it ends inside a quoted cell if it began outside one (`from_outside`) and if it
    began inside one (`from_inside`). None when no cell can span lines (see
    `any_odd_line_sql`): those files are most, and the judging costs."""
    if not any_odd_line:
        return "SELECT NULL::BIGINT AS p, false AS from_outside, false AS from_inside LIMIT 0"
    patterns = {name: _sql_regex(p) for name, p in _line_patterns(delimiter).items()}
    return f"""
        SELECT source_line AS p,
               regexp_full_match(line, {patterns["opens_from_outside"]}) AS from_outside,
               regexp_full_match(line, {patterns["stays_inside"]})
                   OR regexp_full_match(line, {patterns["reopens_from_inside"]})
                   AS from_inside
        FROM {lines} WHERE contains(line, '"')
    """


def quote_states_sql(judged: str) -> str:
    """A query of `judged_lines_sql`'s rows (`judged`): for each line where the quote state
    may change, `p`, `inside_before` and `inside_after` (whether it begins and ends inside a
    quoted cell). Lines not listed keep the state of the listed line before them."""
    return f"""
        WITH setting AS (  -- all but the lines that keep the state they begin in
            SELECT p, from_outside, from_inside,
                   from_outside = from_inside AS sets,
                   sum(CASE WHEN from_outside <> from_inside THEN 1 ELSE 0 END)
                       OVER (ORDER BY p ROWS UNBOUNDED PRECEDING) AS flips_through
            FROM {judged} WHERE from_outside OR NOT from_inside
        ),
        anchored AS (
            SELECT *, max(CASE WHEN sets THEN p END)
                          OVER (ORDER BY p ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)
                          AS last_set
            FROM setting
        ),
        before AS (
            SELECT a.p, a.from_outside, a.from_inside,
                   coalesce(s.from_outside, false)
                       <> ((a.flips_through - (NOT a.sets)::INT
                            - coalesce(s.flips_through, 0)) % 2 = 1) AS inside_before
            FROM anchored a LEFT JOIN setting s ON s.p = a.last_set
        )
        SELECT p, inside_before,
               CASE WHEN inside_before THEN from_inside ELSE from_outside END AS inside_after
        FROM before
    """


def continuation_sql(states: str, last_line: str) -> str:
    """A query of the lines (`pos`) inside a quoted cell that began on an earlier line, from
    `quote_states_sql`'s rows in `states`; `last_line` is the SQL of the file's last line."""
    return f"""
        SELECT unnest(range(p + 1, coalesce(next_p, ({last_line})) + 1)) AS pos
        FROM (SELECT p, inside_after, lead(p) OVER (ORDER BY p) AS next_p FROM {states})
        WHERE inside_after
    """


def unclosed_after_blanking_sql(judged: str, blanked: list[int]) -> str:
    """`unclosed_sql` of the file with the `blanked` lines blank (see `staging.stage_csv`):
    a blank line holds no quote, so its judgment is left out."""
    kept = f"(SELECT * FROM {judged} WHERE p NOT IN ({', '.join(map(str, blanked))}))"
    return unclosed_sql(f"({quote_states_sql(kept)})")


def unclosed_sql(states: str) -> str:
    """A query of one value: the line whose quoted cell is still open at the file's end, or
    NULL."""
    return f"""
        SELECT CASE WHEN (SELECT inside_after FROM {states} ORDER BY p DESC LIMIT 1)
                    THEN (SELECT max(p) FROM {states}
                          WHERE NOT inside_before AND inside_after) END
    """
