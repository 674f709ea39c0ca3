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

_KNOWN_LIFETIMES = """
    SELECT credential_id, min(issued_at) AS issued_at, max(expires_at) AS expires_at
    FROM issued_credentials
    WHERE source_format = $format AND {scope}
    GROUP BY credential_id
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
    this_file = _KNOWN_LIFETIMES.format(
        scope="credential_id IN (SELECT credential_id FROM _mapped)"
    )
    ctx.con.execute(
        f"""
        UPDATE _mapped AS m
        SET credential_issued_at = coalesce(m.credential_issued_at, i.issued_at),
            credential_expires_at = coalesce(m.credential_expires_at, i.expires_at)
        FROM ({this_file}) AS i
        WHERE m.credential_id = i.credential_id AND m.reject_reason IS NULL
          AND m.ts >= i.issued_at
        """,
        {"format": ctx.format_name},
    )
    issued_here = _KNOWN_LIFETIMES.format(
        scope="source_file IN (SELECT DISTINCT source_file FROM _mapped)"
        if ctx.batch_files
        else "source_file = $file"
    )
    ctx.con.execute(
        f"""
        UPDATE events AS e
        SET credential_issued_at = coalesce(e.credential_issued_at, i.issued_at),
            credential_expires_at = coalesce(e.credential_expires_at, i.expires_at)
        FROM ({issued_here}) AS i
        WHERE e.credential_id = i.credential_id AND e.source_format = $format
          AND e.ts >= i.issued_at
          AND (e.credential_expires_at IS NULL OR e.credential_issued_at IS NULL)
        """,
        params,
    )
