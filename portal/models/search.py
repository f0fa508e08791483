from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from portal.db import Base, utcnow


class SearchOutbox(Base):
    """One row per change to something searchable, written in the same transaction as the change.

    Every host's index applies the rows after its own position (kept in its index directory), so
    a crash between the database commit and the index write only delays a change, never loses it.
    """

    __tablename__ = "search_outbox"

    id: Mapped[int] = mapped_column(primary_key=True)
    entity: Mapped[str] = mapped_column(String(16))  # note, reply or article
    entity_id: Mapped[int]
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
