"""A note's version in the other language (en <-> ja): adding and revising it, with history."""
from __future__ import annotations

from flask_babel import lazy_gettext as _l
from sqlalchemy.orm import Session

from portal import auth
from portal.db import utcnow
from portal.errors import ValidationError
from portal.markup import render_markdown
from portal.models import Note, NoteTranslation, TranslationRevision, User
from portal.services import audit
from portal.services.notes import DiffLine, history_diffs, title_and_body

STATUSES = ("authoritative", "courtesy")


def other_lang(note: Note) -> str:
    """The translation's language: the one the note was not written in."""
    return "ja" if note.lang == "en" else "en"


def _validate(data: dict) -> tuple[str, str, bool]:
    errors: dict[str, str] = {}
    title, body = title_and_body(data, errors, noun="translation")
    status = str(data.get("status") or "")
    if status not in STATUSES:
        errors["status"] = _l("Mark the translation authoritative or a courtesy translation.")
    if errors:
        raise ValidationError(errors)
    return title, body, status == "authoritative"


def save_translation(session: Session, note: Note, editor: User, data: dict) -> NoteTranslation:
    """Add the note's version in the other language, or save a new revision of it (none if unchanged)."""
    auth.require_translator(session, editor, note)
    title, body, is_authoritative = _validate(data)
    translation = note.translation
    if translation is None:
        translation = NoteTranslation(note=note, revision=0)
        session.add(translation)
        action = "translation.add"
    elif (title, body, is_authoritative, other_lang(note)) == (
        translation.title, translation.body, translation.is_authoritative, translation.lang
    ):
        return translation
    else:
        action = "translation.edit"
    translation.lang = other_lang(note)  # follows the original if its language was changed
    translation.title, translation.body, translation.is_authoritative = title, body, is_authoritative
    translation.body_html = render_markdown(body)
    translation.revision += 1
    translation.updated_at = utcnow()
    translation.revisions.append(TranslationRevision(
        number=translation.revision, title=title, body=body, is_authoritative=is_authoritative, editor=editor,
    ))
    audit.record(session, editor, action, "note", note.id, revision=translation.revision)
    return translation


def form_values(note: Note) -> dict:
    """The translation's current values as its form shows them (empty for a new one)."""
    translation = note.translation
    if translation is None:
        return {"title": "", "body": "", "status": "courtesy"}
    return {"title": translation.title, "body": translation.body,
            "status": "authoritative" if translation.is_authoritative else "courtesy"}


def revision_diffs(translation: NoteTranslation) -> list[tuple[TranslationRevision, list[DiffLine], list[str]]]:
    """Each revision of the translation with its diff against the one before, newest first."""
    return history_diffs(translation.revisions)
