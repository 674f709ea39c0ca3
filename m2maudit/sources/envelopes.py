"""Cloud envelopes around vendor events: seeing through them, for detection and for loading.

The same CloudTrail or Kubernetes audit event reaches a file bare, or wrapped by the pipe that
carried it: an S3 `Records` batch, a CloudWatch Logs export (`logEvents[].message` holding the
event as a JSON string), an EventBridge event (`detail`), an Azure diagnostic record
(`properties.log`, an object or a JSON string), a Kubernetes `EventList` (`items`). Batches are
split by staging (`stage(ctx, unwrap=...)`); single-event envelopes are opened here, in SQL.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from typing import Any

from m2maudit.sources import sqlfrag as q
from m2maudit.sources.base import InputFile, LoadContext, Sample
from m2maudit.sources.staging import (
    inventory_rows,
    stage,
    stage_documents_together,
    stage_json_document,
    stage_json_lines_together,
)

# Keys whose array holds a batch of records, in the order staging tries them.
BATCH_KEYS = ("Records", "records", "logEvents", "events", "items")

# Slots a load needs to open one-event envelopes; add them to the adapter's `json_slots`.
ENVELOPE_FIELDS: dict[str, tuple[str, ...]] = {
    "_env_detail": ("$.detail",),
    "_env_log": ("$.properties.log",),
    "_env_message": ("$.message",),
}

_MAX_DEPTH = 3


def stage_events(ctx: LoadContext, batch_keys: Sequence[str]) -> None:
    """Stage a file whose records may come in batches under `batch_keys`.

    A file that is one batch (an S3 `Records` file is one line of JSON, or one pretty-printed
    document) is read as documents, so `source_line` is the event's 1-based position in the
    file rather than 1 for every event; otherwise by layout, with physical line numbers: JSON
    lines of batches (Firehose's) are lines, each rejected alone if broken.
    """
    if _one_batch_document(ctx.sample, batch_keys):
        stage_json_document(ctx, unwrap=batch_keys)
    else:
        stage(ctx, unwrap=batch_keys)


def stage_events_together(
    ctx: LoadContext, members: Sequence[tuple[InputFile, Sample]], batch_keys: Sequence[str]
) -> bool:
    """`stage_events` for many small files in one read: all starting with a batch (the usual
    S3 `Records` object), or all JSON lines; False, staging nothing, for a mix."""
    if all(_one_batch_document(sample, batch_keys) for _, sample in members):
        return stage_documents_together(ctx, members, unwrap=batch_keys)
    if all(sample.layout == "jsonl" and not _one_batch_document(sample, batch_keys)
           for _, sample in members):  # fmt: skip
        return stage_json_lines_together(ctx, members, unwrap=batch_keys)
    return False


def _one_batch_document(sample: Sample, batch_keys: Sequence[str]) -> bool:
    """The file starts with a batch of events and is not JSON lines of them: one document,
    on one line or pretty-printed. Read as documents, one broken line of a file of many
    (a Firehose delivery cut short) lost them all, numbered "line 2"."""
    first = sample.first_record or {}
    batch = any(isinstance(first.get(key), list) for key in batch_keys)
    return batch and not (sample.layout == "jsonl" and sample.several_lines)


# The keys every CloudTrail digest file has (log file validation writes one an hour).
_DIGEST_KEYS = {"awsAccountId", "digestStartTime", "digestEndTime", "logFiles"}


def nothing_to_audit(sample: Sample) -> str | None:
    """Why a file no format reads holds nothing to audit, when it is a kind of file that
    sits among logs without events: a synced CloudTrail bucket has a digest file an hour,
    and a quiet five minutes gives `{"Records": []}`."""
    first = sample.first_record or {}
    batches = [first[key] for key in BATCH_KEYS if isinstance(first.get(key), list)]
    if first.keys() >= _DIGEST_KEYS:
        reason = "a CloudTrail digest file (hashes of log files, no events)"
    elif batches and not any(batches):
        reason = "an empty batch of events"
    elif len(first) == 1 and inventory_rows(first) == []:  # `{"tokens": []}`
        reason = "no records (an empty export)"
    elif sample.first_record is None and _only_an_empty_list(sample):  # `[]`
        return "no records (an empty export)"
    else:
        return None
    # Parsed again only for such a file: later records may still hold events.
    return reason if _is_the_whole_file(sample) else None


def _only_an_empty_list(sample: Sample) -> bool:
    """The whole file is `[]` (white space aside): a JSON export of no records. Read from the
    text, without parsing it: most files with no first record are CSV or not JSON at all."""
    text = sample.text.lstrip("\ufeff \t\r\n")
    return sample.whole and text.startswith("[") and "".join(text.split()) == "[]"


def _is_the_whole_file(sample: Sample) -> bool:
    """The first record is all the file holds: one JSON value and nothing after it."""
    if not sample.whole:
        return False
    try:
        return bool(json.loads(sample.text) == sample.first_record)
    except (ValueError, RecursionError):
        return False


def candidate_events(record: dict[str, Any] | None) -> Iterator[dict[str, Any]]:
    """The record itself, then every event found by opening known envelopes (first item of a
    batch, `detail`, `properties.log`, `message`), for cheap detection."""
    yield from _candidates(record, 0)


def _candidates(value: Any, depth: int) -> Iterator[dict[str, Any]]:
    if not isinstance(value, dict) or depth > _MAX_DEPTH:
        return
    yield value
    for key in BATCH_KEYS:
        items = value.get(key)
        if isinstance(items, list) and items:
            yield from _candidates(_parsed(items[0]), depth + 1)
    properties = value.get("properties")
    inner = [value.get("detail"), value.get("message")]
    if isinstance(properties, dict):
        inner.append(properties.get("log"))
    for item in inner:
        yield from _candidates(_parsed(item), depth + 1)


def _parsed(value: Any) -> Any:
    """A JSON object written as a string is read; anything else is returned as it is."""
    if isinstance(value, str) and value.lstrip().startswith("{"):
        try:
            return json.loads(value)
        except (ValueError, RecursionError):
            return None
    return value


def unwrap_prelude(slots: q.Slots, bare_markers: Sequence[str]) -> list[dict[str, str]]:
    """`map_records` prelude layers: `v` holds the slots of the event, opened from its envelope.

    A record holding any of `bare_markers` (slot names such as the event time) is taken as a
    bare event and parsed once. Otherwise the envelope's event (`detail`, `properties.log`,
    or `message` as an object or a JSON string) is parsed a second time in its place; `ev` is
    that inner event, or NULL for a bare record.
    """
    bare = " OR ".join(f"{slots.get(name, 'v0')} IS NOT NULL" for name in bare_markers)
    detail, log, message = (slots.get(name, "v0") for name in ENVELOPE_FIELDS)
    inner = (
        f"CASE WHEN {bare} THEN NULL "
        f"WHEN json_type({detail}) = 'OBJECT' THEN {detail} "
        f"{_opened(log)} {_opened(message)} END"
    )
    return [
        {"v0": slots.extract("rec")},
        {"ev": inner},
        {"v": f"CASE WHEN ev IS NULL THEN v0 ELSE {slots.extract('ev')} END"},
    ]


def _opened(value: str) -> str:
    """CASE arms: an object as it is; a string holding a JSON object, parsed."""
    text = f"({value} ->> '$')"
    return (
        f"WHEN json_type({value}) = 'OBJECT' THEN {value} "
        f"WHEN json_type({value}) = 'VARCHAR' AND left(ltrim({text}), 1) = '{{' "
        f"AND json_valid({text}) THEN json({text})"
    )
