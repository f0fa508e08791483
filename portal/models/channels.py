from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.db import Base, utcnow

if TYPE_CHECKING:
    from portal.models.accounts import User

VISIBILITIES = ("joint", "eu", "jp", "private")


class Channel(Base):
    __tablename__ = "channels"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    name_en: Mapped[str] = mapped_column(String(200))
    name_ja: Mapped[str] = mapped_column(String(200), default="")
    description_en: Mapped[str] = mapped_column(Text, default="")
    description_ja: Mapped[str] = mapped_column(Text, default="")
    visibility: Mapped[str] = mapped_column(String(8))
    is_archived: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    memberships: Mapped[list[ChannelMembership]] = relationship(
        back_populates="channel", cascade="all, delete-orphan"
    )

    def name(self, lang: str) -> str:
        return (self.name_ja if lang == "ja" else self.name_en) or self.name_en

    def description(self, lang: str) -> str:
        return (self.description_ja if lang == "ja" else self.description_en) or self.description_en


class ChannelMembership(Base):
    """Named membership (what a private channel is made of) and channel moderation."""

    __tablename__ = "channel_memberships"

    channel_id: Mapped[int] = mapped_column(ForeignKey("channels.id"), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), primary_key=True, index=True)
    is_moderator: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    channel: Mapped[Channel] = relationship(back_populates="memberships")
    user: Mapped[User] = relationship(lazy="joined")
