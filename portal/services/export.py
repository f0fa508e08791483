"""Export of a channel or a case file, with every revision of every note and reply, for records retention.

Two formats: one JSON document, or a zip of Markdown files (an index plus one file per note, and the
same JSON inside). Deleted notes are left out; a deleted reply keeps its place in the thread but not
its text, as on the thread page. Every export is audited, without any note text in the record.
"""
from __future__ import annotations

import io
import json
import zipfile
from dataclasses import dataclass
from datetime import UTC, datetime

from flask_babel import lazy_gettext as _l
from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from portal import auth
from portal.errors import ValidationError
from portal.models import Channel, Note, Reply, User
from portal.services import audit

FORMATS = ("json", "markdown")
# Fixed entry times keep an archive's bytes a function of its content alone.
ZIP_TIME = (2000, 1, 1, 0, 0, 0)


@dataclass
class ExportFile:
    filename: str
    mimetype: str
    data: bytes
    notes: int
    replies: int


def export_channel(session: Session, user: User, slug: str, *, fmt: str, now: datetime | None = None) -> ExportFile:
    """Every live note of a channel with its thread and revisions, for the channel's moderators and admins."""
    _check_format(fmt)
    channel = auth.exportable_channel(session, user, slug)
    notes = list(session.scalars(_notes().where(Note.channel_id == channel.id, Note.deleted_at.is_(None))
                                 .order_by(Note.id)))
    return _export(session, user, fmt, now, scope={"channel": _channel(channel)}, notes=notes,
                   name=f"channel-{channel.slug}", target=("channel", channel.id))


def export_case(session: Session, user: User, note_id: int, *, fmt: str, now: datetime | None = None) -> ExportFile:
    """A case file: the case note, its revisions, and its whole thread with every reply's revisions."""
    _check_format(fmt)
    note = auth.exportable_case(session, user, note_id)
    notes = list(session.scalars(_notes().where(Note.id == note.id)))
    return _export(session, user, fmt, now, scope={"channel": _channel(note.channel), "case": note.id},
                   notes=notes, name=f"case-{note.id}", target=("note", note.id))


def _check_format(fmt: str) -> None:
    if fmt not in FORMATS:
        raise ValidationError({"format": _l("Choose one of: %(formats)s.", formats=", ".join(FORMATS))})


def _notes():
    return select(Note).options(selectinload(Note.revisions), selectinload(Note.topics),
                                selectinload(Note.citations), selectinload(Note.milestones))


def _export(session, user, fmt, now, *, scope, notes, name, target) -> ExportFile:
    now = now or datetime.now(UTC).replace(tzinfo=None)
    threads: dict[int, list[Reply]] = {note.id: [] for note in notes}
    for reply in session.scalars(
        select(Reply).where(Reply.note_id.in_(list(threads))).order_by(Reply.note_id, Reply.path)
        .options(selectinload(Reply.revisions))
    ):
        threads[reply.note_id].append(reply)
    document = {
        "exported_at": now.isoformat(timespec="seconds") + "Z",
        "exported_by": _person(user),
        **scope,
        "notes": [_note(note, threads[note.id]) for note in notes],
    }
    reply_count = sum(len(thread) for thread in threads.values())
    stem = f"{name}-{now:%Y%m%d-%H%M%S}"
    if fmt == "json":
        result = ExportFile(f"{stem}.json", "application/json", _json(document), len(notes), reply_count)
    else:
        result = ExportFile(f"{stem}.zip", "application/zip", _markdown_zip(stem, document), len(notes), reply_count)
    audit.record(session, user, f"export.{target[0]}", target[0], target[1], format=fmt,
                 notes=result.notes, replies=result.replies)
    return result


def _json(document: dict) -> bytes:
    return (json.dumps(document, ensure_ascii=False, indent=2) + "\n").encode()


def _person(user: User) -> dict:
    return {"name": user.name, "email": user.email}


def _time(value: datetime | None) -> str | None:
    return value.isoformat(timespec="seconds") + "Z" if value else None


def _channel(channel: Channel) -> dict:
    return {"slug": channel.slug, "name_en": channel.name_en, "name_ja": channel.name_ja,
            "visibility": channel.visibility, "is_archived": channel.is_archived}


def _note(note: Note, thread: list[Reply]) -> dict:
    record = {
        "id": note.id, "external_id": note.external_id, "kind": note.kind, "title": note.title,
        "lang": note.lang, "marking": note.marking, "author": _person(note.author),
        "created_at": _time(note.created_at), "updated_at": _time(note.updated_at),
        "topics": [topic.slug for topic in note.topics], "articles": [c.label for c in note.citations],
        "revisions": [{"number": r.number, "title": r.title, "body": r.body, "attributes": r.attributes,
                       "editor": _person(r.editor), "created_at": _time(r.created_at)} for r in note.revisions],
        "replies": [_reply(reply) for reply in thread],
    }
    if note.kind == "case":
        record["case"] = {"reference": note.case_reference, "platforms": note.platforms,
                          "legal_basis": note.legal_basis, "status": note.case_status,
                          "milestones": [{"due_on": m.due_on.isoformat(), "label": m.label} for m in note.milestones]}
    if note.kind == "question":
        record["question"] = {"addressed_side": note.addressed_side, "state": note.question_state,
                              "answer_by": note.answer_by.isoformat() if note.answer_by else None,
                              "accepted_reply_id": note.accepted_reply_id, "declined_grounds": note.declined_grounds}
    return record


def _reply(reply: Reply) -> dict:
    record = {"id": reply.id, "parent_id": reply.parent_id, "depth": reply.depth, "author": _person(reply.author),
              "created_at": _time(reply.created_at), "deleted": reply.is_deleted}
    # As on the thread page: a deleted reply's place is kept, its text is not shown to anyone.
    record["revisions"] = [] if reply.is_deleted else [
        {"number": r.number, "body": r.body, "editor": _person(r.editor), "created_at": _time(r.created_at)}
        for r in reply.revisions]
    return record


def _markdown_zip(stem: str, document: dict) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        def put(name: str, data: bytes) -> None:
            archive.writestr(zipfile.ZipInfo(f"{stem}/{name}", ZIP_TIME), data, zipfile.ZIP_DEFLATED)

        channel = document["channel"]
        index = [f"# {channel['name_en']} ({channel['slug']})", "",
                 f"Exported {document['exported_at']} by {document['exported_by']['name']}.", ""]
        for note in document["notes"]:
            filename = f"notes/{note['id']}.md"
            index.append(f"- [{_inline(note['title'])}]({filename}) — {note['kind']}, "
                         f"{len(note['revisions'])} revisions, {len(note['replies'])} replies")
            put(filename, _note_markdown(note).encode())
        put("index.md", ("\n".join(index) + "\n").encode())
        put("export.json", _json(document))
    return buffer.getvalue()


def _inline(text: str) -> str:
    return text.replace("[", "\\[").replace("]", "\\]").replace("\n", " ")


def _note_markdown(note: dict) -> str:
    lines = [f"# {_inline(note['title'])}", "",
             f"- Note {note['id']}, {note['kind']}, marking {note['marking']}, language {note['lang']}",
             f"- Author: {note['author']['name']} <{note['author']['email']}>, {note['created_at']}"]
    if case := note.get("case"):
        lines.append(f"- Case {case['reference'] or '(no reference)'}, status {case['status']}")
    if note["articles"]:
        lines.append(f"- Cites: {'; '.join(note['articles'])}")
    for revision in note["revisions"]:
        lines += ["", f"## Revision {revision['number']} — {revision['created_at']}, {revision['editor']['name']}",
                  "", f"**{_inline(revision['title'])}**", "", revision["body"]]
    lines += ["", f"## Replies ({len(note['replies'])})"]
    for reply in note["replies"]:
        parent = f", in reply to {reply['parent_id']}" if reply["parent_id"] else ""
        lines += ["", f"### Reply {reply['id']}{parent} — {reply['author']['name']}, {reply['created_at']}"]
        if reply["deleted"]:
            lines += ["", "*This reply was deleted.*"]
        for revision in reply["revisions"]:
            lines += ["", f"#### Revision {revision['number']} — {revision['created_at']}, "
                          f"{revision['editor']['name']}", "", revision["body"]]
    return "\n".join(lines) + "\n"
