"""Acknowledgement: a note asks the other side to confirm they have read it.

The side asked is the one other than the note author's. An organisation of that side counts as
having acknowledged once one of its officials has; those still awaited are the organisations of
that side with at least one active official who may see the channel.
"""
from __future__ import annotations

from dataclasses import dataclass

from flask_babel import lazy_gettext as _l
from sqlalchemy import bindparam, exists, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from portal import auth
from portal.errors import ValidationError
from portal.models import Acknowledgement, AcknowledgementRequest, Note, Organisation, User
from portal.services import audit, notifications


def side_asked(note: Note) -> str:
    return "jp" if note.author.side == "eu" else "eu"


def request_acknowledgement(session: Session, note: Note, actor: User) -> AcknowledgementRequest:
    """Ask the other side to acknowledge the note (the author or a moderator may); asking twice is one request."""
    auth.require_author_or_moderator(session, actor, note.author_id, note.channel)
    existing = session.get(AcknowledgementRequest, note.id)
    if existing is not None:
        return existing
    side = side_asked(note)
    if session.scalar(auth.organisations_seeing(note.channel, side).limit(1)) is None:
        nobody = (_l("Nobody on the JP side can see this channel.") if side == "jp"
                  else _l("Nobody on the EU side can see this channel."))
        raise ValidationError({"request_acknowledgement": nobody})
    request = AcknowledgementRequest(note_id=note.id, side=side, requested_by_id=actor.id)
    session.add(request)
    session.flush()
    notifications.acknowledgement_requested(session, note, side, actor)
    audit.record(session, actor, "acknowledgement.request", "note", note.id, side=side)
    return request


def acknowledge(session: Session, note: Note, reader: User) -> Acknowledgement:
    """Record that this reader of the side asked acknowledged the note; doing it again changes nothing."""
    request = session.get(AcknowledgementRequest, note.id)
    if request is None:
        raise ValidationError(_l("This note does not ask for acknowledgement."))
    auth.require_acknowledger(reader, note, request.side)
    existing = session.get(Acknowledgement, (note.id, reader.id))
    if existing is not None:
        return existing
    acknowledgement = Acknowledgement(note_id=note.id, user_id=reader.id, organisation_id=reader.organisation_id)
    try:
        with session.begin_nested():  # a double click racing itself: the second insert finds the first
            session.add(acknowledgement)
    except IntegrityError:
        return session.get(Acknowledgement, (note.id, reader.id))
    audit.record(session, reader, "acknowledgement.give", "note", note.id)
    return acknowledgement


@dataclass
class Status:
    """What the note page shows: the request, who acknowledged when, and which organisations have not."""

    request: AcknowledgementRequest
    given: list[Acknowledgement]
    awaited: list[Organisation]

    def by(self, user: User) -> bool:
        return any(ack.user_id == user.id for ack in self.given)


# Built once: every note page asks it, and most notes ask for no acknowledgement (a miss, for which
# session.get builds its statement each time).
_REQUEST = select(AcknowledgementRequest).where(AcknowledgementRequest.note_id == bindparam("note_id"))


def status(session: Session, note: Note) -> Status | None:
    """The note's acknowledgement status, or None when it asks for none (three queries at most)."""
    request = session.scalar(_REQUEST, {"note_id": note.id})
    if request is None:
        return None
    given = list(session.scalars(
        select(Acknowledgement).where(Acknowledgement.note_id == note.id).order_by(Acknowledgement.created_at)
    ))
    done = {ack.organisation_id for ack in given}
    awaited = [org for org in session.scalars(auth.organisations_seeing(note.channel, request.side)
                                              .order_by(Organisation.name)) if org.id not in done]
    return Status(request, given, awaited)


def awaiting(session: Session, user: User, *, limit: int = 20) -> list[Note]:
    """Visible notes that ask the user's side and that nobody of the user's organisation acknowledged yet."""
    acknowledged = exists().where(
        Acknowledgement.note_id == Note.id, Acknowledgement.organisation_id == user.organisation_id
    )
    return list(session.scalars(
        auth.visible_notes(user)
        .join(AcknowledgementRequest, AcknowledgementRequest.note_id == Note.id)
        .where(AcknowledgementRequest.side == user.side, ~acknowledged)
        .order_by(AcknowledgementRequest.created_at.desc(), Note.id.desc())
        .limit(limit)
    ))
