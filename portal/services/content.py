"""The taxonomy and regulation index from content/, and citations of articles."""
from __future__ import annotations

import functools
import json
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from flask_babel import lazy_gettext as _l
from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from portal.errors import ValidationError
from portal.models import Act, Article, Topic, note_topics

CONTENT_DIR = Path(__file__).resolve().parents[2] / "content"

# "DSA Art. 34", "DMA Art 6(7)", "dma 6(7)", "MSCA Article 7", "APPI 第26条の2" → act, number, pinpoint.
CITATION = re.compile(
    r"^\s*(?P<act>[A-Za-z][A-Za-z ]*?)\s*(?:art(?:icle)?\.?|第)?\s*"
    r"(?P<number>\d+(?:-\d+)?)\s*(?:条(?:の(?P<branch>\d+))?)?\s*(?P<pinpoint>(?:\([0-9a-z]+\))*)\s*$",
    re.IGNORECASE,
)


@dataclass
class LoadReport:
    topics: int
    acts: int
    articles: int


def load_content(session: Session, directory: Path = CONTENT_DIR) -> LoadReport:
    """Insert or update topics, acts and articles from the data files; safe to run again."""
    topics = json.loads((directory / "topics.json").read_text(encoding="utf-8"))
    existing = {topic.slug: topic for topic in session.scalars(select(Topic))}
    for entry in topics:
        topic = existing.get(entry["slug"]) or Topic(slug=entry["slug"])
        topic.kind, topic.label_en, topic.label_ja = entry["kind"], entry["label_en"], entry["label_ja"]
        session.add(topic)
    acts = articles = 0
    for path in sorted((directory / "regulations").glob("*.json")):
        entry = json.loads(path.read_text(encoding="utf-8"))
        act = session.scalar(select(Act).where(Act.slug == entry["slug"])) or Act(slug=entry["slug"])
        act.short, act.title_en, act.title_ja = entry["short"], entry["title_en"], entry["title_ja"]
        act.jurisdiction, act.url = entry["jurisdiction"], entry["url"]
        act.reference = entry.get("reference", "")
        session.add(act)
        session.flush()
        known = {article.number: article for article in act.articles}
        for position, item in enumerate(entry["articles"]):
            article = known.get(item["number"]) or Article(act=act, number=item["number"])
            article.position = position
            article.title_en = item.get("title_en", "")
            article.title_ja = item.get("title_ja", "")
            article.url = item.get("url", "")
            session.add(article)
            articles += 1
        acts += 1
    session.flush()
    return LoadReport(topics=len(topics), acts=acts, articles=articles)


@functools.lru_cache(maxsize=4)
def law_names(directory: Path = CONTENT_DIR) -> dict[str, tuple[str, ...]]:
    """Every name of a Japanese law (formal title, former titles, short names) mapped to all of them.

    From content/law_names.json, so that search finds 個人情報の保護に関する法律 when the query
    says 個人情報保護法, and the other way round. Each entry is {"name": formal title, "short":
    [short names], "former": [earlier formal titles]}.
    """
    path = directory / "law_names.json"
    if not path.exists():
        return {}
    names: dict[str, tuple[str, ...]] = {}
    for entry in json.loads(path.read_text(encoding="utf-8")):
        group = tuple(dict.fromkeys([entry["name"], *entry.get("former", ()), *entry.get("short", ())]))
        for name in group:
            names[unicodedata.normalize("NFKC", name)] = group
    return names


def topics(session: Session) -> list[Topic]:
    return list(session.scalars(select(Topic).order_by(Topic.kind, Topic.slug)))


# Built once: every note page lists its note's topics (a lazy load of note.topics builds its statement
# each time, about a tenth of a typical thread page).
_NOTE_TOPICS = (
    select(Topic).join(note_topics, note_topics.c.topic_id == Topic.id)
    .where(note_topics.c.note_id == bindparam("note_id")).order_by(Topic.slug)
)


def note_topics_of(session: Session, note_id: int) -> list[Topic]:
    """A note's topics in the order note.topics has them."""
    return list(session.scalars(_NOTE_TOPICS, {"note_id": note_id}))


def acts(session: Session) -> list[Act]:
    return list(session.scalars(select(Act).order_by(Act.jurisdiction, Act.short)))


def act_by_slug(session: Session, slug: str) -> Act | None:
    return session.scalar(select(Act).where(Act.slug == slug))


def topics_by_slug(session: Session, slugs: list[str]) -> list[Topic]:
    """The topics named, or ValidationError naming the unknown ones."""
    wanted = {slug.strip().lower() for slug in slugs if slug.strip()}
    if not wanted:
        return []  # no query: most notes name no topic, and an import validates thousands
    found = list(session.scalars(select(Topic).where(Topic.slug.in_(wanted))))
    unknown = wanted - {topic.slug for topic in found}
    if unknown:
        raise ValidationError({"topics": _l("Unknown topic: %(topics)s.", topics=", ".join(sorted(unknown)))})
    return found


def parse_citation(session: Session, text: str) -> tuple[Article, str]:
    """Resolve a citation such as "DMA Art. 6(7)" to an article of the index and its pinpoint."""
    match = CITATION.match(unicodedata.normalize("NFKC", text))
    if not match:
        raise ValidationError({"articles": _l('Cannot read the citation "%(text)s"; write e.g. "DSA Art. 34".', text=text)})
    act_name = " ".join(match["act"].split()).lower()
    number = match["number"] + (f"-{match['branch']}" if match["branch"] else "")
    act = session.scalar(
        select(Act).where((Act.slug == act_name.replace(" ", "-")) | (Act.short.ilike(act_name)))
    )
    if act is None:
        raise ValidationError({"articles": _l('Unknown act in "%(text)s".', text=text)})
    article = session.scalar(select(Article).where(Article.act_id == act.id, Article.number == number))
    if article is None:
        raise ValidationError({"articles": _l("%(act)s has no Art. %(number)s in the index.", act=act.short, number=number)})
    return article, match["pinpoint"].lower()
