"""Threaded replies: to a note or to any reply, to any depth, with history and soft deletion."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from flask import current_app
from flask_babel import lazy_gettext as _l
from sqlalchemy import Row, bindparam, select, update
from sqlalchemy.orm import Session

from portal import auth
from portal.db import MAX_ID, utcnow
from portal.errors import Forbidden, ValidationError
from portal.markup import render_markdown
from portal.models import Note, Organisation, Reply, ReplyRevision, User
from portal.services import audit, digests, notifications

PATH_WIDTH = 10


def _clean_body(body: str) -> str:
    body = (body or "").replace("\r\n", "\n").strip()
    if not body:
        raise ValidationError({"body": _l("Write the reply's text.")})
    if len(body.encode()) > current_app.config["MAX_BODY_BYTES"]:
        raise ValidationError({"body": _l("The text is over the 200 KB limit.")})
    return body


def post_reply(
    session: Session,
    note: Note,
    author: User,
    body: str,
    *,
    parent: Reply | None = None,
    created_at: datetime | None = None,
) -> Reply:
    """Reply to the note, or to one of its replies."""
    auth.require_writable(note.channel)
    if note.is_deleted:
        raise ValidationError(_l("This note has been deleted."))
    if parent is not None and (parent.note_id != note.id or parent.is_deleted):
        raise ValidationError(_l("The reply you are answering is not part of this note."))
    clean = _clean_body(body)
    now = created_at or utcnow()
    reply = Reply(
        note_id=note.id,
        parent_id=parent.id if parent else None,
        author=author,
        body=clean,
        body_html=render_markdown(clean),
        depth=parent.depth + 1 if parent else 0,
        created_at=now,
        updated_at=now,
    )
    reply.revisions.append(ReplyRevision(number=1, body=clean, editor=author, created_at=now))
    session.add(reply)
    session.flush()
    reply.path = (parent.path if parent else "") + f"{reply.id:0{PATH_WIDTH}d}/"
    # One UPDATE, so concurrent replies cannot lose each other's count.
    session.execute(
        update(Note)
        .where(Note.id == note.id)
        .values(reply_count=Note.reply_count + 1, last_activity_at=now)
        .execution_options(synchronize_session=False)
    )
    digests.record_event(session, "reply", note, reply=reply, actor=author)
    notifications.reply_posted(session, note, reply, parent)
    return reply


def edit_reply(session: Session, reply: Reply, editor: User, body: str) -> Reply:
    """Save a new revision of a reply's text."""
    auth.require_author_or_moderator(session, editor, reply.author_id, reply.note.channel)
    clean = _clean_body(body)
    if clean == reply.body:
        return reply
    reply.revision += 1
    reply.body, reply.body_html, reply.updated_at = clean, render_markdown(clean), utcnow()
    reply.revisions.append(ReplyRevision(number=reply.revision, body=clean, editor=editor))
    audit.record(session, editor, "reply.edit", "reply", reply.id, revision=reply.revision)
    return reply


def delete_reply(session: Session, reply: Reply, actor: User) -> None:
    """Soft-delete: the reply's place in the thread stays, its text is hidden."""
    auth.require_author_or_moderator(session, actor, reply.author_id, reply.note.channel)
    reply.deleted_at, reply.deleted_by_id = utcnow(), actor.id
    session.execute(
        update(Note).where(Note.id == reply.note_id).values(reply_count=Note.reply_count - 1)
        .execution_options(synchronize_session=False)
    )
    audit.record(session, actor, "reply.delete", "reply", reply.id)


def restore_reply(session: Session, reply: Reply, actor: User) -> None:
    if not actor.is_admin:
        raise Forbidden(_l("Only an administrator may restore a deleted reply."))
    if reply.deleted_at is not None:
        reply.deleted_at, reply.deleted_by_id = None, None
        session.execute(
            update(Note).where(Note.id == reply.note_id).values(reply_count=Note.reply_count + 1)
            .execution_options(synchronize_session=False)
        )
        audit.record(session, actor, "reply.restore", "reply", reply.id)


@dataclass
class ThreadItem:
    reply: Row  # what a page shows of the reply: the columns of SHOWN
    level: int  # depth relative to the thread shown, capped by THREAD_MAX_DEPTH
    continues: bool  # deeper replies exist and are shown on the reply's own page


# What a page shows of a reply, as plain rows: a 500-reply thread loads in less than half the time it
# takes as ORM objects with their authors and organisations (and without the Markdown source). Made of
# the tables' columns, not the mapped attributes, so that the session runs it as a plain Core statement
# with none of the ORM's result set-up.
_REPLIES, _USERS, _ORGANISATIONS = Reply.__table__.c, User.__table__.c, Organisation.__table__.c
SHOWN = (
    select(_REPLIES.id, _REPLIES.author_id, _REPLIES.body_html, _REPLIES.depth, _REPLIES.revision,
           _REPLIES.created_at, _REPLIES.deleted_at.is_not(None).label("is_deleted"),
           _USERS.name.label("author_name"), _ORGANISATIONS.name.label("organisation_name"),
           _ORGANISATIONS.side.label("side"))
    .join_from(Reply.__table__, User.__table__, _REPLIES.author_id == _USERS.id)
    .join(Organisation.__table__, _USERS.organisation_id == _ORGANISATIONS.id)
)

# Built once: every note page runs it.
_THREAD = SHOWN.where(_REPLIES.note_id == bindparam("note_id")).order_by(_REPLIES.path)


def thread(session: Session, note: Note, *, root: Reply | None = None) -> list[ThreadItem]:
    """The replies under the note (or root and the replies under it) in tree order, with deep branches cut off."""
    query = _THREAD
    if root is not None:
        query = query.where(_REPLIES.path.startswith(root.path, autoescape=True))
    base = root.depth if root else 0
    cap = current_app.config["THREAD_MAX_DEPTH"]
    items: list[ThreadItem] = []
    for reply in session.execute(query, {"note_id": note.id}):
        level = reply.depth - base
        if level > cap:
            if level == cap + 1:
                next(item for item in reversed(items) if item.level == cap).continues = True
            continue
        items.append(ThreadItem(reply, level, False))
    return items


def shown_reply(session: Session, reply_id: int, thread: Sequence[ThreadItem] = ()) -> Row | None:
    """One reply as a page shows it (the accepted answer): from the thread already loaded, else one query."""
    for item in thread:
        if item.reply.id == reply_id:
            return item.reply
    return session.execute(SHOWN.where(_REPLIES.id == reply_id)).first()


def reply_in_note(session: Session, note: Note, reply_id: int | None) -> Reply | None:
    """A live reply of this note by id (the parent of a new reply), or ValidationError."""
    if reply_id is None:
        return None
    reply = session.get(Reply, reply_id) if 0 < reply_id <= MAX_ID else None
    if reply is None or reply.note_id != note.id or reply.is_deleted:
        raise ValidationError(_l("The reply you are answering is not part of this note."))
    return reply


def whole_thread(session: Session, note: Note) -> list[Reply]:
    """Every reply of the note, deleted ones included (they keep the thread's shape), in tree order."""
    return list(session.scalars(select(Reply).where(Reply.note_id == note.id).order_by(Reply.path)))
