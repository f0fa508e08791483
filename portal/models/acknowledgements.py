from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.db import Base, utcnow
from portal.models.accounts import User


class AcknowledgementRequest(Base):
    """A note's request that the other side acknowledge it: one per note."""

    __tablename__ = "acknowledgement_requests"

    note_id: Mapped[int] = mapped_column(ForeignKey("notes.id", ondelete="CASCADE"), primary_key=True)
    # The side asked: the side other than the note author's.
    side: Mapped[str] = mapped_column(String(2), index=True)
    requested_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Acknowledgement(Base):
    """One reader of the asked side acknowledged the note; their organisation counts as having done so."""

    __tablename__ = "acknowledgements"

    note_id: Mapped[int] = mapped_column(
        ForeignKey("acknowledgement_requests.note_id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), primary_key=True, index=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    user: Mapped[User] = relationship(lazy="joined")
