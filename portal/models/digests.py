"""Subscriptions, the events digests are made of, deliveries, feed tokens and read markers."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.db import Base, utcnow
from portal.models.accounts import User
from portal.models.channels import Channel
from portal.models.content import Topic
from portal.models.notes import Note

TARGETS = ("all", "topic", "channel", "note")
FREQUENCIES = ("immediate", "daily", "weekly", "in-app")


class Subscription(Base):
    """What a reader follows (everything they may see, a topic, a channel or one note) and how often."""

    __tablename__ = "subscriptions"
    # No unique constraint: NULL targets would never collide; services.subscriptions refuses doubles.
    __table_args__ = (Index("ix_subscriptions_frequency", "frequency", "is_muted"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    target: Mapped[str] = mapped_column(String(8))
    topic_id: Mapped[int | None] = mapped_column(ForeignKey("topics.id"))
    channel_id: Mapped[int | None] = mapped_column(ForeignKey("channels.id"))
    note_id: Mapped[int | None] = mapped_column(ForeignKey("notes.id", ondelete="CASCADE"))
    frequency: Mapped[str] = mapped_column(String(16))
    is_muted: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    user: Mapped[User] = relationship()
    topic: Mapped[Topic | None] = relationship(lazy="joined")
    channel: Mapped[Channel | None] = relationship(lazy="joined")
    note: Mapped[Note | None] = relationship(lazy="joined")


class DigestEvent(Base):
    """Something a digest reports, written in the same transaction as the change itself."""

    __tablename__ = "digest_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    kind: Mapped[str] = mapped_column(String(16))
    note_id: Mapped[int] = mapped_column(ForeignKey("notes.id", ondelete="CASCADE"), index=True)
    reply_id: Mapped[int | None] = mapped_column(ForeignKey("replies.id", ondelete="CASCADE"))
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    # case_status: {"from": ..., "to": ...}; never note text.
    details: Mapped[dict] = mapped_column(JSON, default=dict)


class DigestDelivery(Base):
    """One digest for one reader and period (or, for immediate delivery, one event): sent at most once.

    `period_key` is the period's end (`daily:2026-11-21T00:00`) or the event (`immediate:123`), so a
    rerun finds what was already sent; `pending` rows are what a failed send left for the next run.
    """

    __tablename__ = "digest_deliveries"
    __table_args__ = (UniqueConstraint("user_id", "frequency", "period_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    frequency: Mapped[str] = mapped_column(String(16))
    period_key: Mapped[str] = mapped_column(String(64))
    period_start: Mapped[datetime]
    period_end: Mapped[datetime]
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending, sent, empty, superseded
    item_count: Mapped[int] = mapped_column(default=0)
    error: Mapped[str] = mapped_column(String(500), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None]


class FeedToken(Base):
    """A reader's Atom feed token; only its SHA-256 is kept, so the database cannot replay it."""

    __tablename__ = "feed_tokens"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class DigestRead(Base):
    """Up to when a reader has marked their in-app digest read: later items are unread."""

    __tablename__ = "digest_reads"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    read_until: Mapped[datetime]
