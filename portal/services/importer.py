"""Bulk import of notes from JSON Lines, one note per line."""
from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from portal import auth
from portal.errors import ValidationError
from portal.models import Channel, Note, User
from portal.services import notes

REQUIRED = ("id", "title", "body", "lang")
OPTIONAL = ("kind", "topics", "articles", "marking", "answer_by", "case_reference", "platforms",
            "legal_basis", "case_status", "milestones")


@dataclass
class ImportResult:
    written: list[Note] = field(default_factory=list)
    created: int = 0
    updated: int = 0
    errors: list[tuple[int, str]] = field(default_factory=list)


def import_notes(
    session: Session,
    lines: Iterable[str],
    *,
    channel: Channel,
    author: User,
    progress: Callable[[int], None] | None = None,
) -> ImportResult:
    """Create or update (by external id) one note per line; a bad line is reported and skipped."""
    auth.require_writable(channel)
    if not auth.can_see_channel(session, author, channel):
        raise ValidationError({"author": f"{author.email} cannot see the channel {channel.slug}."})
    result = ImportResult()
    for number, line in enumerate(lines, start=1):
        if progress:
            progress(number)
        if not line.strip():
            continue
        try:
            with session.begin_nested():
                note, created = _import_line(session, line, channel, author)
        except ValidationError as error:
            result.errors.append((number, str(error)))
            continue
        result.written.append(note)
        if created:
            result.created += 1
        else:
            result.updated += 1
    return result


def _import_line(session: Session, line: str, channel: Channel, author: User) -> tuple[Note, bool]:
    try:
        record = json.loads(line)
    except json.JSONDecodeError as error:
        raise ValidationError(f"not valid JSON ({error.msg} at column {error.colno})") from None
    if not isinstance(record, dict):
        raise ValidationError("expected a JSON object")
    if _holds_nul(record):
        raise ValidationError("contains a NUL character (\\u0000), which cannot be stored")
    missing = [key for key in REQUIRED if key not in record]
    if missing:
        raise ValidationError(f"missing {', '.join(missing)}")
    if not isinstance(record["id"], (str, int)) or not str(record["id"]).strip():
        raise ValidationError({"id": "must be a non-empty string"})
    external_id = str(record["id"]).strip()[:200]
    data = {key: record[key] for key in (*REQUIRED, *OPTIONAL) if key in record}
    kind = str(data.pop("kind", "update"))
    existing = session.scalar(
        select(Note).where(Note.channel_id == channel.id, Note.external_id == external_id)
    )
    if existing is not None:
        if existing.kind != kind:
            raise ValidationError({"kind": f"note {external_id} is a {existing.kind}; the kind cannot change"})
        return notes.edit_note(session, existing, author, data), False
    return notes.post_note(session, channel, author, kind, data, external_id=external_id), True


def _holds_nul(value) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_holds_nul(key) or _holds_nul(item) for key, item in value.items())
    if isinstance(value, list):
        return any(_holds_nul(item) for item in value)
    return False
