"""What an official sees first: their channels, questions awaiting their side, deadlines, activity."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session, contains_eager

from portal import auth
from portal.models import CaseMilestone, Channel, Note, User
from portal.services import acknowledgements, channels


@dataclass
class Dashboard:
    channels: list[tuple[Channel, int]]
    awaiting: list[Note]
    milestones: list[CaseMilestone]
    recent: list[Note]
    to_acknowledge: list[Note]


def for_user(session: Session, user: User, today: date) -> Dashboard:
    """The dashboard's lists, each limited to what this user may see."""
    awaiting = session.scalars(
        auth.visible_notes(user)
        .where(Note.kind == "question", Note.question_state == "open", Note.addressed_side == user.side)
        .order_by(Note.answer_by, Note.id)
        .limit(20)
    )
    milestones = session.scalars(
        select(CaseMilestone)
        .join(Note, CaseMilestone.note_id == Note.id)
        .join(Channel, Note.channel_id == Channel.id)
        .where(
            auth.channel_is_visible(user),
            Note.deleted_at.is_(None),
            CaseMilestone.due_on >= today,
            CaseMilestone.due_on <= today + timedelta(days=30),
        )
        .order_by(CaseMilestone.due_on)
        .options(contains_eager(CaseMilestone.note))
        .limit(20)
    )
    recent = session.scalars(
        auth.visible_notes(user).order_by(Note.last_activity_at.desc(), Note.id.desc()).limit(15)
    )
    return Dashboard(
        channels=channels.list_for(session, user, include_archived=False),
        awaiting=list(awaiting),
        milestones=list(milestones),
        recent=list(recent),
        to_acknowledge=acknowledgements.awaiting(session, user),
    )
