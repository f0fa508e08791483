from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, backref, mapped_column, relationship

from portal.db import Base, utcnow
from portal.models.accounts import User
from portal.models.notes import Note


class NoteTranslation(Base):
    """A note's version in the other language (the note's own `lang` is the original's)."""

    __tablename__ = "note_translations"

    id: Mapped[int] = mapped_column(primary_key=True)
    # One other language (en <-> ja), so at most one translation per note.
    note_id: Mapped[int] = mapped_column(ForeignKey("notes.id", ondelete="CASCADE"), unique=True)
    lang: Mapped[str] = mapped_column(String(2))
    title: Mapped[str] = mapped_column(String(300))
    body: Mapped[str] = mapped_column(Text)
    body_html: Mapped[str] = mapped_column(Text)
    # Authoritative: both versions are equally valid; otherwise a courtesy translation.
    is_authoritative: Mapped[bool] = mapped_column(default=False)
    revision: Mapped[int] = mapped_column(default=1)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)

    # A backref keeps the Note model untouched; a note page loads it with one query.
    note: Mapped[Note] = relationship(
        backref=backref("translation", uselist=False, cascade="all, delete-orphan", passive_deletes=True)
    )
    revisions: Mapped[list[TranslationRevision]] = relationship(
        back_populates="translation", cascade="all, delete-orphan", order_by="TranslationRevision.number"
    )


class TranslationRevision(Base):
    """Every version of a translation, as NoteRevision keeps every version of the original."""

    __tablename__ = "translation_revisions"
    __table_args__ = (UniqueConstraint("translation_id", "number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    translation_id: Mapped[int] = mapped_column(ForeignKey("note_translations.id", ondelete="CASCADE"))
    number: Mapped[int]
    title: Mapped[str] = mapped_column(String(300))
    body: Mapped[str] = mapped_column(Text)
    is_authoritative: Mapped[bool] = mapped_column(default=False)
    editor_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    translation: Mapped[NoteTranslation] = relationship(back_populates="revisions")
    editor: Mapped[User] = relationship(lazy="joined")

    @property
    def attributes(self) -> dict:
        """What the history page compares besides title and body, as for NoteRevision."""
        return {"status": "authoritative" if self.is_authoritative else "courtesy translation"}
