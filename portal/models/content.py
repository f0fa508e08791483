from __future__ import annotations

from sqlalchemy import ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.db import Base


class Topic(Base):
    __tablename__ = "topics"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    kind: Mapped[str] = mapped_column(String(16))
    label_en: Mapped[str] = mapped_column(String(200))
    label_ja: Mapped[str] = mapped_column(String(200))

    def label(self, lang: str) -> str:
        return self.label_ja if lang == "ja" else self.label_en


class Act(Base):
    __tablename__ = "acts"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(32), unique=True)
    short: Mapped[str] = mapped_column(String(32), unique=True)
    # Official titles of EU acts run to several hundred characters.
    title_en: Mapped[str] = mapped_column(Text)
    title_ja: Mapped[str] = mapped_column(Text)
    jurisdiction: Mapped[str] = mapped_column(String(2))
    reference: Mapped[str] = mapped_column(String(100), default="")
    url: Mapped[str] = mapped_column(String(500))

    articles: Mapped[list[Article]] = relationship(
        back_populates="act", order_by="Article.position"
    )

    def title(self, lang: str) -> str:
        return (self.title_ja if lang == "ja" else self.title_en) or self.title_en


class Article(Base):
    __tablename__ = "articles"
    __table_args__ = (UniqueConstraint("act_id", "number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    act_id: Mapped[int] = mapped_column(ForeignKey("acts.id"))
    number: Mapped[str] = mapped_column(String(16))
    position: Mapped[int] = mapped_column(default=0)
    title_en: Mapped[str] = mapped_column(Text, default="")
    title_ja: Mapped[str] = mapped_column(Text, default="")
    url: Mapped[str] = mapped_column(String(500), default="")

    act: Mapped[Act] = relationship(back_populates="articles", lazy="joined")

    def title(self, lang: str) -> str:
        return (self.title_ja if lang == "ja" else self.title_en) or self.title_en or self.title_ja

    @property
    def link(self) -> str:
        return self.url or self.act.url
