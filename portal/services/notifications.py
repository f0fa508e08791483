"""In-app notifications: created in the transaction of the event, shown only while the note is visible.

Recipients are decided when the event happens (only officials who may see the note, never the
actor) and again when notifications are read: a query never returns one whose note has been
deleted or whose channel the reader can no longer see.

Mentions: `@` followed by a full e-mail address (`@eva@ec.example.eu`), by the part of an address
before the `@` when only one account has it (`@eva`), or by an organisation's slug (`@jftc`, every
member). Mentions in code are ignored, and a mention only notifies when a note or reply is posted.
"""
from __future__ import annotations

import html
import re
import unicodedata
from datetime import date

from sqlalchemy import bindparam, exists, func, or_, select, update
from sqlalchemy.orm import Session, contains_eager, joinedload

from portal import auth
from portal.db import utcnow
from portal.errors import NotFound
from portal.models import Channel, Note, Notification, Organisation, Reply, User

# Not preceded by what may precede an @ inside an address or a URL, so "eva@ec.example.eu" in a
# sentence is not a mention of "ec"; ends on a letter or digit, so "@eva." mentions eva.
MENTION = re.compile(
    r"(?<![A-Za-z0-9._%+\-@/])@([A-Za-z0-9](?:[A-Za-z0-9._+\-]*[A-Za-z0-9])?"
    r"(?:@[A-Za-z0-9](?:[A-Za-z0-9\-.]*[A-Za-z0-9])?)?)"
)
CODE = re.compile(r"<(pre|code)\b.*?</\1>", re.DOTALL | re.IGNORECASE)
TAG = re.compile(r"<[^>]+>")
# A body may mention this many handles at most: more is a mass mailing, not a mention.
MAX_MENTIONS = 50
# When one person has several reasons to be notified of one event, they get the first of these.
PRIORITY = ("reply", "answer_accepted", "mention", "org_mention", "acknowledgement")


def mentions(body_html: str) -> list[str]:
    """The handles mentioned in rendered Markdown, lower-cased, in order, without those in code."""
    text = html.unescape(TAG.sub(" ", CODE.sub(" ", body_html)))
    text = unicodedata.normalize("NFKC", text)  # a full-width ＠ typed in Japanese counts too
    return list(dict.fromkeys(match.lower() for match in MENTION.findall(text)))[:MAX_MENTIONS]


def _mentioned(session: Session, handles: list[str]) -> dict[int, str]:
    """User ids mentioned by these handles, each with "mention" or "org_mention"."""
    if not handles:
        return {}
    found: dict[int, str] = {}
    org_ids = select(Organisation.id).where(Organisation.slug.in_(handles))
    for user_id in session.scalars(select(User.id).where(User.organisation_id.in_(org_ids))):
        found[user_id] = "org_mention"
    emails = [handle for handle in handles if "@" in handle]
    locals_ = [handle for handle in handles if "@" not in handle]
    conditions = [User.email.in_(emails)] if emails else []
    conditions += [User.email.startswith(f"{local}@", autoescape=True) for local in locals_]
    by_local: dict[str, list[int]] = {}
    for user_id, email in session.execute(select(User.id, User.email).where(or_(*conditions))):
        email = email.lower()
        if email in emails:
            found[user_id] = "mention"
        by_local.setdefault(email.split("@", 1)[0], []).append(user_id)
    for local in locals_:
        # A local part that two accounts share names nobody: better silent than the wrong person.
        if len(by_local.get(local, [])) == 1:
            found[by_local[local][0]] = "mention"
    return found


def _notify(session: Session, note: Note, reasons: dict[int, str], *, actor: User | None,
            reply: Reply | None = None) -> int:
    """Insert one notification per recipient who may see the note now; never for the actor."""
    wanted = {user_id: kind for user_id, kind in reasons.items() if actor is None or user_id != actor.id}
    if not wanted:
        return 0
    allowed = session.scalars(
        select(User.id).where(User.id.in_(list(wanted)), auth.user_sees_channel(note.channel))
    ).all()
    now = utcnow()
    session.add_all(
        Notification(user_id=user_id, kind=wanted[user_id], note_id=note.id, reply_id=reply.id if reply else None,
                     actor_id=actor.id if actor else None, created_at=now)
        for user_id in sorted(allowed)
    )
    return len(allowed)


def _merge(*sources: dict[int, str]) -> dict[int, str]:
    merged: dict[int, str] = {}
    for source in sources:
        for user_id, kind in source.items():
            if user_id not in merged or PRIORITY.index(kind) < PRIORITY.index(merged[user_id]):
                merged[user_id] = kind
    return merged


def note_posted(session: Session, note: Note) -> int:
    """Notify whoever the new note mentions."""
    return _notify(session, note, _mentioned(session, mentions(note.body_html)), actor=note.author)


def reply_posted(session: Session, note: Note, reply: Reply, parent: Reply | None) -> int:
    """Notify the note's author, the author of the reply answered, and whoever the reply mentions."""
    direct = {note.author_id: "reply"}
    if parent is not None:
        direct[parent.author_id] = "reply"
    reasons = _merge(direct, _mentioned(session, mentions(reply.body_html)))
    return _notify(session, note, reasons, actor=reply.author, reply=reply)


def answer_accepted(session: Session, note: Note, reply: Reply, actor: User) -> int:
    """Notify the asker (when a moderator accepted for them) and the author of the accepted answer."""
    reasons = {note.author_id: "answer_accepted", reply.author_id: "answer_accepted"}
    return _notify(session, note, reasons, actor=actor, reply=reply)


def acknowledgement_requested(session: Session, note: Note, side: str, actor: User) -> int:
    """Notify every official of the side asked who may see the note."""
    side_orgs = select(Organisation.id).where(Organisation.side == side)
    readers = session.scalars(select(User.id).where(User.organisation_id.in_(side_orgs))).all()
    return _notify(session, note, dict.fromkeys(readers, "acknowledgement"), actor=actor)


def notify_overdue(session: Session, today: date) -> int:
    """Tell the askers of questions past their answer-by date, once per date (run daily from cron)."""
    already = exists().where(
        Notification.note_id == Note.id, Notification.kind == "overdue",
        # Created after the current answer-by date: a question given a later date can go overdue again.
        Notification.created_at >= Note.answer_by,
    )
    overdue = session.scalars(
        select(Note).where(
            Note.kind == "question", Note.question_state == "open", Note.answer_by < today,
            Note.deleted_at.is_(None), ~already,
        ).order_by(Note.id)
    ).all()
    return sum(_notify(session, note, {note.author_id: "overdue"}, actor=None) for note in overdue)


# The reader's notifications whose note they may still see (parameters: auth.reader_params). Built
# once: the header of every page counts the unread ones.
VISIBLE = (
    select(Notification)
    .join(Note, Notification.note_id == Note.id)
    .join(Channel, Note.channel_id == Channel.id)
    .where(Notification.user_id == bindparam("reader_id"), Note.deleted_at.is_(None),
           auth.CHANNEL_IS_VISIBLE_TO_READER)
)
UNREAD_COUNT = VISIBLE.where(Notification.read_at.is_(None)).with_only_columns(func.count(Notification.id))
LISTED = VISIBLE.options(contains_eager(Notification.note), joinedload(Notification.actor))  # with what lists show


def unread_count(session: Session, user: User) -> int:
    """How many unread notifications this user may see: one query, for the header of every page."""
    return session.scalar(UNREAD_COUNT, auth.reader_params(user)) or 0


def page(session: Session, user: User, *, number: int = 1, per_page: int = 30) -> tuple[list[Notification], bool]:
    """A page of the user's visible notifications, newest first, and whether more follow."""
    rows = list(session.scalars(
        LISTED.order_by(Notification.id.desc()).limit(per_page + 1).offset((max(number, 1) - 1) * per_page),
        auth.reader_params(user),
    ))
    return rows[:per_page], len(rows) > per_page


def before(session: Session, user: User, *, before_id: int | None = None,
           limit: int = 30) -> tuple[list[Notification], bool]:
    """The user's visible notifications, newest first, older than before_id, and whether more follow:
    the API's keyset pages."""
    query = LISTED
    if before_id is not None:
        query = query.where(Notification.id < before_id)
    rows = list(session.scalars(query.order_by(Notification.id.desc()).limit(limit + 1), auth.reader_params(user)))
    return rows[:limit], len(rows) > limit


def open_notification(session: Session, user: User, notification_id: int) -> Notification:
    """The user's own visible notification, marked read; NotFound for anyone else's."""
    notification = session.scalar(VISIBLE.where(Notification.id == notification_id), auth.reader_params(user))
    if notification is None:
        raise NotFound("notification")
    if notification.read_at is None:
        notification.read_at = utcnow()
    return notification


def mark_all_read(session: Session, user: User) -> int:
    """Mark every unread notification of this user read; returns how many were."""
    result = session.execute(
        update(Notification).where(Notification.user_id == user.id, Notification.read_at.is_(None))
        .values(read_at=utcnow()).execution_options(synchronize_session=False)
    )
    return result.rowcount
