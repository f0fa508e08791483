from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.db import Base, utcnow
from portal.models.accounts import User
from portal.models.notes import Note, Reply

NOTIFICATION_KINDS = ("reply", "mention", "org_mention", "answer_accepted", "overdue", "acknowledgement")


class Notification(Base):
    """Something that happened that one user should know about, pointing into one note."""

    __tablename__ = "notifications"
    __table_args__ = (
        # The header's unread count and the newest-first page, from the index alone.
        Index("ix_notifications_user_read", "user_id", "read_at"),
        Index("ix_notifications_user_newest", "user_id", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    kind: Mapped[str] = mapped_column(String(16))
    note_id: Mapped[int] = mapped_column(ForeignKey("notes.id", ondelete="CASCADE"), index=True)
    reply_id: Mapped[int | None] = mapped_column(ForeignKey("replies.id", ondelete="CASCADE"))
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    read_at: Mapped[datetime | None]

    note: Mapped[Note] = relationship()
    reply: Mapped[Reply | None] = relationship()
    actor: Mapped[User | None] = relationship(foreign_keys=[actor_id])

    @property
    def is_read(self) -> bool:
        return self.read_at is not None
