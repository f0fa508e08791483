from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    JSON,
    Column,
    ForeignKey,
    Index,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.db import Base, utcnow
from portal.models.accounts import User
from portal.models.channels import Channel
from portal.models.content import Article, Topic

KINDS = ("update", "case", "question")
LANGS = ("en", "ja")
MARKINGS = ("public", "limited", "sensitive")
CASE_STATUSES = ("open", "investigating", "preliminary_findings", "decision_adopted", "closed")

note_topics = Table(
    "note_topics",
    Base.metadata,
    Column("note_id", ForeignKey("notes.id", ondelete="CASCADE"), primary_key=True),
    Column("topic_id", ForeignKey("topics.id"), primary_key=True, index=True),
)


class Note(Base):
    __tablename__ = "notes"
    __table_args__ = (
        UniqueConstraint("channel_id", "external_id"),
        Index("ix_notes_channel_activity", "channel_id", "last_activity_at"),
        # The dashboard's "recent activity" across channels, without sorting the whole table.
        Index("ix_notes_activity", "last_activity_at", "id"),
        # Live-note counts per channel from the index alone.
        Index("ix_notes_channel_deleted", "channel_id", "deleted_at"),
        Index("ix_notes_kind_state", "kind", "question_state", "answer_by"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    external_id: Mapped[str | None] = mapped_column(String(200))
    channel_id: Mapped[int] = mapped_column(ForeignKey("channels.id"))
    author_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    title: Mapped[str] = mapped_column(String(300))
    body: Mapped[str] = mapped_column(Text)
    # Rendered once on save so that pages never re-render Markdown.
    body_html: Mapped[str] = mapped_column(Text)
    lang: Mapped[str] = mapped_column(String(2), default="en")
    marking: Mapped[str] = mapped_column(String(16), default="limited")

    case_reference: Mapped[str] = mapped_column(String(100), default="")
    platforms: Mapped[str] = mapped_column(String(300), default="")
    legal_basis: Mapped[str] = mapped_column(String(300), default="")
    case_status: Mapped[str | None] = mapped_column(String(32))

    # A question is addressed to the side other than its author's.
    addressed_side: Mapped[str | None] = mapped_column(String(2))
    answer_by: Mapped[date | None]
    question_state: Mapped[str | None] = mapped_column(String(16))
    declined_grounds: Mapped[str] = mapped_column(Text, default="")
    accepted_reply_id: Mapped[int | None] = mapped_column(
        ForeignKey("replies.id", use_alter=True, name="fk_notes_accepted_reply_id_replies")
    )

    revision: Mapped[int] = mapped_column(default=1)
    reply_count: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_activity_at: Mapped[datetime] = mapped_column(default=utcnow)
    deleted_at: Mapped[datetime | None]
    deleted_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))

    channel: Mapped[Channel] = relationship(lazy="joined")
    author: Mapped[User] = relationship(foreign_keys=[author_id], lazy="joined")
    topics: Mapped[list[Topic]] = relationship(secondary=note_topics, order_by=Topic.slug)
    citations: Mapped[list[NoteArticle]] = relationship(
        back_populates="note", cascade="all, delete-orphan"
    )
    milestones: Mapped[list[CaseMilestone]] = relationship(
        back_populates="note", cascade="all, delete-orphan", order_by="CaseMilestone.due_on"
    )
    revisions: Mapped[list[NoteRevision]] = relationship(
        back_populates="note", cascade="all, delete-orphan", order_by="NoteRevision.number"
    )

    @property
    def is_deleted(self) -> bool:
        return self.deleted_at is not None

    @property
    def is_sensitive(self) -> bool:
        """Shown only inside the portal: e-mails and feeds say only that such a note exists."""
        return self.marking == "sensitive"

    def question_status(self, today: date) -> str | None:
        """open / answered / declined, or overdue: open past its answer-by date."""
        if self.kind != "question":
            return None
        if self.question_state == "open" and self.answer_by and self.answer_by < today:
            return "overdue"
        return self.question_state

    def days_left(self, today: date) -> int | None:
        if self.kind != "question" or self.question_state != "open" or not self.answer_by:
            return None
        return (self.answer_by - today).days


class NoteArticle(Base):
    """A citation: an article of the regulation index, with an optional pinpoint such as "(7)"."""

    __tablename__ = "note_articles"

    note_id: Mapped[int] = mapped_column(
        ForeignKey("notes.id", ondelete="CASCADE"), primary_key=True
    )
    article_id: Mapped[int] = mapped_column(ForeignKey("articles.id"), primary_key=True, index=True)
    pinpoint: Mapped[str] = mapped_column(String(32), primary_key=True, default="")

    note: Mapped[Note] = relationship(back_populates="citations")
    article: Mapped[Article] = relationship(lazy="joined")

    @property
    def label(self) -> str:
        return f"{self.article.act.short} Art. {self.article.number}{self.pinpoint}"


class CaseMilestone(Base):
    __tablename__ = "case_milestones"

    id: Mapped[int] = mapped_column(primary_key=True)
    note_id: Mapped[int] = mapped_column(ForeignKey("notes.id", ondelete="CASCADE"), index=True)
    due_on: Mapped[date] = mapped_column(index=True)
    label: Mapped[str] = mapped_column(String(300))

    note: Mapped[Note] = relationship(back_populates="milestones")


class NoteRevision(Base):
    """Every version of a note, the first included, so history and diffs need no reconstruction."""

    __tablename__ = "note_revisions"
    __table_args__ = (UniqueConstraint("note_id", "number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    note_id: Mapped[int] = mapped_column(ForeignKey("notes.id", ondelete="CASCADE"))
    number: Mapped[int]
    title: Mapped[str] = mapped_column(String(300))
    body: Mapped[str] = mapped_column(Text)
    # Everything else that can be edited (lang, marking, topics, citations, case fields).
    attributes: Mapped[dict] = mapped_column(JSON, default=dict)
    editor_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    note: Mapped[Note] = relationship(back_populates="revisions")
    editor: Mapped[User] = relationship(lazy="joined")


class Reply(Base):
    __tablename__ = "replies"
    __table_args__ = (Index("ix_replies_note_path", "note_id", "path"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    note_id: Mapped[int] = mapped_column(ForeignKey("notes.id"))
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("replies.id"), index=True)
    author_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    body: Mapped[str] = mapped_column(Text)
    body_html: Mapped[str] = mapped_column(Text)
    depth: Mapped[int] = mapped_column(default=0)
    # Materialised path of zero-padded ids: one indexed, ordered query yields the whole tree.
    path: Mapped[str] = mapped_column(Text, default="")
    revision: Mapped[int] = mapped_column(default=1)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    deleted_at: Mapped[datetime | None]
    deleted_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))

    note: Mapped[Note] = relationship(foreign_keys=[note_id])
    author: Mapped[User] = relationship(foreign_keys=[author_id], lazy="joined")
    revisions: Mapped[list[ReplyRevision]] = relationship(
        back_populates="reply", cascade="all, delete-orphan", order_by="ReplyRevision.number"
    )

    @property
    def is_deleted(self) -> bool:
        return self.deleted_at is not None


class ReplyRevision(Base):
    __tablename__ = "reply_revisions"
    __table_args__ = (UniqueConstraint("reply_id", "number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    reply_id: Mapped[int] = mapped_column(ForeignKey("replies.id", ondelete="CASCADE"))
    number: Mapped[int]
    body: Mapped[str] = mapped_column(Text)
    editor_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    reply: Mapped[Reply] = relationship(back_populates="revisions")
    editor: Mapped[User] = relationship(lazy="joined")
