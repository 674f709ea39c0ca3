"""Credential lifetimes learned from the call that issued the credential.

A later call made with a short-lived credential rarely says when it expires; the call that
issued it does (CloudTrail `AssumeRole*` / `GetSessionToken` responses, a Kubernetes
`TokenRequest`). An adapter that sees such issuing calls fills three staging-only columns in
`_mapped` (`issued_credential_id`, `issued_at`, `issued_expires_at`) and calls
`propagate_issued_lifetimes`. It records them in `issued_credentials`, then copies each
lifetime onto the calls made with that credential at or after its issue, whichever file came
first: this file's calls from every issuance of the same format, and the earlier files' calls
from this file's issuances.
"""

from __future__ import annotations

from m2maudit.sources.base import LoadContext
from m2maudit.timeutil import CLOCK_SKEW_SQL

# The issuance a call used: the last one of its credential id before the call. When the call
# states when its session began (CloudTrail's `creationDate`), the session began AT that
# issuance, give or take a clock's skew: the last issuance before the session began, and
# only if it was issued then. An id reused for another credential (a placeholder in test
# data, a key id some tool writes for every session) is no evidence of this call's
# lifetime, and an expiry taken from it would be a use after expiry that never happened.
_MATCHED = """
    SELECT c.call, i.issued_at, i.expires_at
    FROM (SELECT rowid AS call, * FROM {calls} WHERE {calls_filter}
          AND credential_id IN (SELECT credential_id FROM {scope})) AS c
    ASOF JOIN (
        SELECT credential_id, issued_at, max(expires_at) AS expires_at
        FROM issued_credentials
        WHERE source_format = $format
          AND credential_id IN (SELECT credential_id FROM {scope})
        GROUP BY credential_id, issued_at
    ) AS i ON c.credential_id = i.credential_id
          AND coalesce(c.credential_issued_at + {skew}, c.ts) >= i.issued_at
    WHERE c.credential_issued_at IS NULL OR c.credential_issued_at <= i.issued_at + {skew}
"""


def propagate_issued_lifetimes(ctx: LoadContext) -> None:
    """Record this file's issued credentials and join lifetimes to the calls that used them."""
    # A batch of small files has each row's file in `_mapped.source_file`.
    params = {"format": ctx.format_name}
    if not ctx.batch_files:
        params["file"] = ctx.file.display
    file = "source_file" if ctx.batch_files else "$file"
    ctx.con.execute(
        f"""
        INSERT INTO issued_credentials
        SELECT issued_credential_id, $format, issued_at, issued_expires_at, {file}, source_line
        FROM _mapped
        WHERE reject_reason IS NULL AND issued_credential_id IS NOT NULL
        """,
        params,
    )
    # This file's calls, from every issuance of the same format.
    _give_lifetimes(ctx, "_mapped", "_mapped", "reject_reason IS NULL", {"format": ctx.format_name})
    issued_here = (
        "(SELECT DISTINCT credential_id FROM issued_credentials WHERE source_file IN "
        "(SELECT DISTINCT source_file FROM _mapped))"
        if ctx.batch_files
        else "(SELECT DISTINCT credential_id FROM issued_credentials WHERE source_file = $file)"
    )
    # The earlier files' calls, from this file's issuances.
    without_lifetime = "(credential_expires_at IS NULL OR credential_issued_at IS NULL)"
    _give_lifetimes(
        ctx, "events", issued_here, f"source_format = $format AND {without_lifetime}", params
    )


def _give_lifetimes(
    ctx: LoadContext, calls: str, scope: str, calls_filter: str, params: dict[str, str]
) -> None:
    """Fill the issue and expiry times the `calls` table's rows do not state (of the
    `calls_filter` rows whose credential id is in `scope`) from the issuance each used."""
    matched = _MATCHED.format(
        calls=calls, scope=scope, calls_filter=calls_filter, skew=CLOCK_SKEW_SQL
    )
    ctx.con.execute(
        f"""
        UPDATE {calls} AS c
        SET credential_issued_at = coalesce(c.credential_issued_at, i.issued_at),
            credential_expires_at = coalesce(c.credential_expires_at, i.expires_at)
        FROM ({matched}) AS i
        WHERE c.rowid = i.call
        """,
        params,
    )
