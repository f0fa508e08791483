"""Who may see and do what. Every permission rule lives here, applied in queries.

Visibility of a channel: `joint` to every official, `eu`/`jp` to that side's officials,
`private` to its named members only. Portal admins administer accounts and channels but
read only what their own side and memberships allow: sensitive exchanges stay with the
people they were meant for.

A note's translation may be added or revised by its author, anyone of the author's organisation
and the channel's moderators. Acknowledgement is asked by the author or a moderator, of the side
other than the author's, and given by readers of that side only.
"""
from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import TypeVar

from flask_babel import lazy_gettext as _l
from sqlalchemy import ColumnElement, Select, and_, bindparam, or_, select
from sqlalchemy.orm import Session
from sqlalchemy.orm.interfaces import ORMOption

from portal.errors import Forbidden, NotFound
from portal.extensions import login_manager
from portal.models import Channel, ChannelMembership, Note, Organisation, Reply, User

T = TypeVar("T")


@login_manager.user_loader
def _load_user(session_key: str) -> User | None:
    from portal.db import get_session, utcnow
    from portal.services import sessions

    db = get_session()
    # A session that timed out, or whose user was deactivated or now needs a second factor, is ended;
    # otherwise last-seen is refreshed now and then. This runs before a view does any work of its own.
    user = sessions.resume(db, session_key, now=utcnow())
    if db.dirty or db.deleted:
        db.commit()
    return user


def _visible_to(user_id, side) -> ColumnElement[bool]:
    member_of = select(ChannelMembership.channel_id).where(ChannelMembership.user_id == user_id)
    return or_(
        Channel.visibility == "joint",
        Channel.visibility == side,
        and_(Channel.visibility == "private", Channel.id.in_(member_of)),
    )


def channel_is_visible(user: User) -> ColumnElement[bool]:
    """A WHERE clause on Channel: the channels this user may see."""
    return _visible_to(user.id, user.side)


# The same clause with the reader as bound parameters, whose values reader_params() gives: for the
# statements every page runs, built once, so that a request neither builds them nor computes their
# cache keys (SQLAlchemy keeps the key of a statement object).
CHANNEL_IS_VISIBLE_TO_READER = _visible_to(bindparam("reader_id"), bindparam("reader_side"))


def reader_params(user: User) -> dict:
    """The values of CHANNEL_IS_VISIBLE_TO_READER's parameters for this user."""
    return {"reader_id": user.id, "reader_side": user.side}


def visible_channels(user: User) -> Select[tuple[Channel]]:
    return select(Channel).where(channel_is_visible(user))


def visible_notes(user: User) -> Select[tuple[Note]]:
    """Live notes in the channels this user may see."""
    return (
        select(Note)
        .join(Channel, Note.channel_id == Channel.id)
        .where(channel_is_visible(user), Note.deleted_at.is_(None))
    )


def can_see_channel(session: Session, user: User, channel: Channel) -> bool:
    if channel.visibility == "joint" or channel.visibility == user.side:
        return True
    if channel.visibility == "private":
        return session.get(ChannelMembership, (channel.id, user.id)) is not None
    return False


def channel_for(session: Session, user: User, slug: str) -> Channel:
    """The channel by slug, or NotFound when it is absent or invisible to this user."""
    channel = session.scalar(visible_channels(user).where(Channel.slug == slug))
    if channel is None:
        raise NotFound("channel")
    return channel


def note_for(session: Session, user: User, note_id: int, *, include_deleted: bool = False,
             load: Sequence[ORMOption] = ()) -> Note:
    """The note, or NotFound. Deleted notes are visible only to admins, who may restore them.

    load: loader options for what the caller will show of the note (its collections, in this query);
    a module constant, as the statement is built once per set of options.
    """
    note = session.scalar(_note_query(tuple(load)), {"note_id": note_id, **reader_params(user)})
    if note is None or (note.is_deleted and not (include_deleted and user.is_admin)):
        raise NotFound("note")
    return note


@lru_cache(maxsize=16)
def _note_query(load: tuple[ORMOption, ...]) -> Select[tuple[Note]]:
    return (
        select(Note)
        .join(Channel, Note.channel_id == Channel.id)
        .where(Note.id == bindparam("note_id"), CHANNEL_IS_VISIBLE_TO_READER)
        .options(*load)
    )


def own(session: Session, user: User, model: type[T], ident: int, noun: str) -> T:
    """A row of `model` (a token, a subscription, a session) belonging to this user, or NotFound:
    another user's looks the same as none."""
    row = session.get(model, ident)
    if row is None or row.user_id != user.id:
        raise NotFound(noun)
    return row


def reply_for(session: Session, user: User, reply_id: int) -> Reply:
    """A live reply in a live note that this user may see, or NotFound."""
    reply = session.get(Reply, reply_id)
    if reply is None or reply.is_deleted:
        raise NotFound("reply")
    note_for(session, user, reply.note_id)
    return reply


# Built once: every note page asks it (session.get builds its statement each time it misses, and most
# readers are no channel's member). Of the table's columns: the session runs it as plain Core, without
# the ORM's result set-up for what is one value.
_MEMBERSHIPS = ChannelMembership.__table__.c
_IS_CHANNEL_MODERATOR = select(_MEMBERSHIPS.is_moderator).where(
    _MEMBERSHIPS.channel_id == bindparam("channel_id"), _MEMBERSHIPS.user_id == bindparam("user_id")
)


def moderates(session: Session, user: User, channel: Channel) -> bool:
    """Site moderators and admins moderate every channel they can see; channel moderators theirs."""
    if user.is_moderator:
        return True
    return bool(session.scalar(_IS_CHANNEL_MODERATOR, {"channel_id": channel.id, "user_id": user.id}))


def require_writable(channel: Channel) -> None:
    if channel.is_archived:
        raise Forbidden(_l("This channel is archived and read-only."))


def require_author_or_moderator(session: Session, user: User, author_id: int, channel: Channel) -> None:
    require_writable(channel)
    if user.id != author_id and not moderates(session, user, channel):
        raise Forbidden(_l("Only the author or a moderator may do that."))


def require_admin(user: User) -> None:
    if not user.is_admin:
        raise NotFound("page")


def user_sees_channel(channel: Channel) -> ColumnElement[bool]:
    """A WHERE clause on User: the active officials who may see this channel (notification recipients)."""
    if channel.visibility == "joint":
        sees = User.id.is_not(None)
    elif channel.visibility == "private":
        sees = User.id.in_(select(ChannelMembership.user_id).where(ChannelMembership.channel_id == channel.id))
    else:
        sees = User.organisation_id.in_(select(Organisation.id).where(Organisation.side == channel.visibility))
    return and_(User.is_active.is_(True), sees)


def organisations_seeing(channel: Channel, side: str) -> Select[tuple[Organisation]]:
    """The organisations of one side with at least one active member who may see the channel."""
    members = select(User.organisation_id).where(user_sees_channel(channel))
    return select(Organisation).where(Organisation.side == side, Organisation.id.in_(members))


def may_translate(session: Session, user: User, note: Note, *, moderator: bool | None = None) -> bool:
    """The author, a colleague of the author's organisation, or a moderator of the note's channel.

    moderator: what `moderates` answered for this user and channel, when the caller already asked.
    """
    if user.id == note.author_id or user.organisation_id == note.author.organisation_id:
        return True
    return moderates(session, user, note.channel) if moderator is None else moderator


def require_translator(session: Session, user: User, note: Note) -> None:
    require_writable(note.channel)
    if not may_translate(session, user, note):
        raise Forbidden(_l("Only the author, a colleague of the author or a moderator may translate this note."))


def may_acknowledge(user: User, note: Note, side: str) -> bool:
    """Whether to offer this reader the Acknowledge button: what require_acknowledger would allow."""
    return user.side == side and not note.channel.is_archived and not note.is_deleted


def require_acknowledger(user: User, note: Note, side: str) -> None:
    """Only readers of the side asked acknowledge: the author's side cannot acknowledge for the other."""
    require_writable(note.channel)
    if user.side != side:
        raise Forbidden(_l("Only the %(side)s side is asked to acknowledge this note.", side=side.upper()))


def exportable_channel(session: Session, user: User, slug: str) -> Channel:
    """A channel this user may export for records: visible (else NotFound) and moderated by them."""
    channel = channel_for(session, user, slug)
    if not moderates(session, user, channel):
        raise Forbidden(_l("Only the channel's moderators and admins may export it."))
    return channel


def exportable_case(session: Session, user: User, note_id: int) -> Note:
    """A live case note this user may export with its thread; any other note is NotFound as a case."""
    note = note_for(session, user, note_id)
    if note.kind != "case":
        raise NotFound("case")
    if not moderates(session, user, note.channel):
        raise Forbidden(_l("Only the channel's moderators and admins may export a case file."))
    return note
