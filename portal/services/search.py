"""Search: what is indexed, the outbox that keeps every host's index in step, and queries.

Every flush that touches a note, reply or article writes outbox rows in the same transaction
(`record_changes`). After commit the rows are applied to this process's index (`sync`); rows
left pending by a crash or a busy lock are applied by the next sync: the next write, the next
search, start-up, or `flask --app portal search sync`.
"""
from __future__ import annotations

import html
import logging
import re
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from itertools import chain

import nh3
from flask import Flask, current_app, url_for
from flask_babel import lazy_gettext as _l
from sqlalchemy import func, insert, select
from sqlalchemy.exc import OperationalError, ProgrammingError
from sqlalchemy.orm import Session, selectinload
from whoosh.query import And, Or, Query, Term

from portal import auth
from portal.errors import ValidationError
from portal.models import (
    Act,
    Article,
    CaseMilestone,
    Channel,
    Note,
    NoteArticle,
    NoteTranslation,
    Reply,
    SearchOutbox,
    Topic,
    User,
)
from portal.search import query as query_language
from portal.search.index import LockError, Results, SearchIndex
from portal.services import content

log = logging.getLogger(__name__)

# Outbox ids below the applied position that were not yet visible (a transaction still open when
# a later one committed, as PostgreSQL sequences allow) are re-checked for this long.
GAP_SECONDS = 600
BATCH = 2000
# Small index segments (one per unmerged commit) slow every search a little; see sync().
MERGE_AT = 8
MERGE_ANYWAY = 32
CJK = re.compile(r"[\u3040-\u30ff\u3400-\u9fff\uf900-\ufaff]")
CITATION_IN_TEXT = re.compile(
    r"\b(DSA|DMA|GDPR|AI\s+Act|APPI|TFDPA|MSCA|IDPA)\s*(?:Art(?:icle)?\.?)?\s*(\d+(?:-\d+)?)((?:\([0-9a-z]+\))*)",
    re.IGNORECASE,
)


# What is indexed ------------------------------------------------------------------------------

def plain_text(body_html: str) -> str:
    """The text of rendered Markdown, for indexing and snippets (no markup syntax in snippets)."""
    return html.unescape(nh3.clean(body_html.replace("</p>", "</p>\n"), tags=set()))


def _author_terms(user: User) -> str:
    local = user.email.split("@", 1)[0]
    words = re.findall(r"\w+", unicodedata.normalize("NFKC", user.name).lower())
    return ",".join(dict.fromkeys([user.email, local, *local.split("."), *words]))


def _day(value: date | None) -> datetime | None:
    return datetime(value.year, value.month, value.day) if value else None


def note_document(note: Note) -> dict:
    labels = [citation.label for citation in note.citations]
    document = {
        "key": f"note:{note.id}", "type": "note", "note_id": str(note.id), "channel_id": str(note.channel_id),
        "channel": note.channel.slug, "kind": note.kind, "status": note.case_status or "",
        "qstate": note.question_state or "", "topics": ",".join(topic.slug for topic in note.topics),
        "articles": ",".join(f"{c.article.act.slug}:{c.article.number}" for c in note.citations),
        "author": _author_terms(note.author), "org": note.author.organisation.slug, "side": note.author.side,
        "lang": note.lang, "title": note.title, "body": plain_text(note.body_html),
        "extra": " ".join([note.case_reference, note.platforms, note.legal_basis, *labels]),
        "created": note.created_at, "answer_by": _day(note.answer_by),
        "stamp": f"{note.revision}:{note.question_state}:{note.case_status}",
    }
    # The version in the other language is found by a search in either language.
    translation = note.translation
    if translation is not None:
        document["title"] += f"\n{translation.title}"
        document["body"] += f"\n{plain_text(translation.body_html)}"
        document["stamp"] += f":t{translation.revision}"
    return document


def reply_document(reply: Reply, note: Note) -> dict:
    body = plain_text(reply.body_html)
    return {
        "key": f"reply:{reply.id}", "type": "reply", "note_id": str(note.id), "reply_id": reply.id,
        "channel_id": str(note.channel_id), "channel": note.channel.slug, "kind": note.kind,
        "author": _author_terms(reply.author), "org": reply.author.organisation.slug, "side": reply.author.side,
        "lang": "ja" if CJK.search(body) else "en", "body": body, "created": reply.created_at,
        "stamp": str(reply.revision),
    }


def article_document(article: Article) -> dict:
    act = article.act
    return {
        "key": f"article:{article.id}", "type": "article", "note_id": "0", "channel_id": "",
        "kind": "article", "articles": f"{act.slug}:{article.number}",
        "title": f"{act.short} Art. {article.number} {article.title_en} {article.title_ja}".strip(),
        "body": f"{act.title_en} {act.title_ja}",
        "extra": f"{act.short} Art. {article.number} {act.reference}",
        # Undated: the epoch puts index entries after every note when sorting by newest.
        "created": datetime(1970, 1, 1),
        "stamp": f"{article.title_en}|{article.title_ja}",
    }


# The outbox -----------------------------------------------------------------------------------

def record_changes(session: Session, _flush_context) -> None:
    """after_flush: one outbox row per searchable thing this flush changed, in the same transaction."""
    changed: set[tuple[str, int]] = set()
    for obj in chain(session.new, session.deleted, (o for o in session.dirty if session.is_modified(o))):
        if isinstance(obj, Note):
            changed.add(("note", obj.id))
        elif isinstance(obj, Reply):
            changed.add(("reply", obj.id))
        elif isinstance(obj, (NoteArticle, CaseMilestone, NoteTranslation)):
            changed.add(("note", obj.note_id))
        elif isinstance(obj, Article):
            changed.add(("article", obj.id))
    if changed:
        session.connection().execute(
            insert(SearchOutbox), [{"entity": entity, "entity_id": ident} for entity, ident in sorted(changed)]
        )
        session.info["search_pending"] = True


def apply_after_commit(session: Session) -> None:
    """after_commit: bring this process's index up to date; a failure only delays the change.

    SQLAlchemy also fires after_commit when a savepoint (session.begin_nested()) is released.
    That is not the end of the unit of work: the enclosing commit applies everything at once.
    (Syncing per savepoint made `notes import`, one savepoint per line, commit the index once
    per line: 8,200 lines took 9 minutes instead of about one.)
    """
    if session.in_nested_transaction():
        return
    if session.info.pop("search_pending", False):
        try:
            sync(current_app._get_current_object())
        except Exception:
            log.warning("search index not updated now; the change stays in the outbox", exc_info=True)


def forget_after_rollback(session: Session) -> None:
    """after_rollback: nothing is left to apply, unless only a savepoint was rolled back (the
    changes flushed before it are still pending; a needless sync would only find nothing to do)."""
    if not session.in_nested_transaction():
        session.info.pop("search_pending", None)


def index_for(app: Flask) -> SearchIndex:
    return app.extensions["search_index"]


def has_pending(session: Session, index: SearchIndex) -> bool:
    position = index.position()
    newest = session.scalar(select(func.max(SearchOutbox.id))) or 0
    return newest > position["applied"] or bool(position["gaps"])


def sync(app: Flask, *, timeout: float = 10.0, merge: bool = False) -> int:
    """Apply outbox rows beyond this index's position; returns how many rows were applied.

    Commits do not merge segments (merging can take longer than the change itself). merge=True,
    as `flask --app portal search sync` run periodically does, merges small segments once
    MERGE_AT have piled up; without it, only once MERGE_ANYWAY have.
    """
    index = index_for(app)
    applied = _apply_pending(app, index, timeout)
    index.merge_small_segments(threshold=MERGE_AT if merge else MERGE_ANYWAY)
    return applied


def _apply_pending(app: Flask, index: SearchIndex, timeout: float) -> int:
    with app.extensions["db_sessionmaker"]() as session:
        try:
            if not has_pending(session, index):
                return 0
        except (OperationalError, ProgrammingError):  # no schema yet (before `flask init`)
            session.rollback()
            return 0
        total = 0
        while True:
            with index.writer(timeout=timeout, merge=False) as writer:
                position = index.position()
                gaps = {int(k): v for k, v in position.get("gaps", {}).items()}
                rows = session.execute(
                    select(SearchOutbox.id, SearchOutbox.entity, SearchOutbox.entity_id)
                    .where((SearchOutbox.id > position["applied"]) | SearchOutbox.id.in_(list(gaps)))
                    .order_by(SearchOutbox.id)
                    .limit(BATCH)
                ).all()
                _apply(session, index, writer, rows)
            index.set_position(_advance(position["applied"], gaps, [row.id for row in rows]))
            total += len(rows)
            if len(rows) < BATCH:
                return total


def _advance(applied: int, gaps: dict[int, str], seen: list[int]) -> dict:
    now = datetime.now(UTC)
    newest = max(seen, default=applied)
    seen_set = set(seen)
    for missing in range(applied + 1, newest):
        if missing not in seen_set and len(gaps) < 10_000:
            gaps[missing] = now.isoformat()
    kept = {
        str(ident): at for ident, at in gaps.items()
        if ident not in seen_set and (now - datetime.fromisoformat(at)).total_seconds() < GAP_SECONDS
    }
    return {"applied": max(applied, newest), "gaps": kept}


def _apply(session: Session, index: SearchIndex, writer, rows) -> None:
    note_ids = {row.entity_id for row in rows if row.entity == "note"}
    reply_ids = {row.entity_id for row in rows if row.entity == "reply"}
    article_ids = {row.entity_id for row in rows if row.entity == "article"}
    searcher = index.searcher()  # the committed index: it cannot see what this writer adds
    written: set[str] = set()
    added: dict[int, Note] = {}
    loaded = _load_notes(session, note_ids)
    for note in loaded:
        if note.is_deleted:
            index.remove_note(note.id, writer)
            continue
        if searcher.document_number(key=f"note:{note.id}") is None:
            # New, or restored after deletion: its live replies come back with it (below).
            writer.add_document(**note_document(note))
            added[note.id] = note
        else:
            writer.update_document(**note_document(note))
    for reply in _live_replies(session, added):  # one query, not one per note: imports add thousands
        writer.update_document(**reply_document(reply, added[reply.note_id]))
        written.add(f"reply:{reply.id}")
    for gone in note_ids - {note.id for note in loaded}:
        index.remove_note(gone, writer)
    replies = {reply.id: reply for reply in _load_replies(session, reply_ids)}
    for reply_id in reply_ids:
        reply = replies.get(reply_id)
        key = f"reply:{reply_id}"
        if key in written:
            continue
        if reply is None or reply.is_deleted or reply.note.is_deleted:
            writer.delete_by_term("key", key)
        elif searcher.document_number(key=key) is None:
            writer.add_document(**reply_document(reply, reply.note))
        else:
            writer.update_document(**reply_document(reply, reply.note))
    for article in session.scalars(select(Article).where(Article.id.in_(article_ids))):
        writer.update_document(**article_document(article))


def _load_notes(session: Session, ids: Iterable[int]) -> list[Note]:
    ids = list(ids)
    if not ids:
        return []
    return list(session.scalars(
        select(Note).where(Note.id.in_(ids))
        .options(selectinload(Note.topics), selectinload(Note.citations), selectinload(Note.translation))
    ))


def _load_replies(session: Session, ids: Iterable[int]) -> list[Reply]:
    ids = list(ids)
    if not ids:
        return []
    return list(session.scalars(select(Reply).where(Reply.id.in_(ids)).options(selectinload(Reply.note))))


def _live_replies(session: Session, note_ids: Iterable[int]) -> list[Reply]:
    ids = list(note_ids)
    if not ids:
        return []
    return list(session.scalars(select(Reply).where(Reply.note_id.in_(ids), Reply.deleted_at.is_(None))))


# Rebuild and verify ---------------------------------------------------------------------------

def expected_documents(session: Session) -> Iterable[dict]:
    """Every document the index should hold, built from the database."""
    for article in session.scalars(select(Article).join(Act)):
        yield article_document(article)
    notes = session.scalars(
        select(Note).where(Note.deleted_at.is_(None)).order_by(Note.id)
        .options(selectinload(Note.topics), selectinload(Note.citations), selectinload(Note.translation))
        .execution_options(yield_per=500)
    )
    by_id: dict[int, Note] = {}
    for note in notes:
        by_id[note.id] = note
        yield note_document(note)
    replies = session.scalars(
        select(Reply).join(Note, Reply.note_id == Note.id)
        .where(Reply.deleted_at.is_(None), Note.deleted_at.is_(None)).order_by(Reply.id)
        .execution_options(yield_per=2000)
    )
    for reply in replies:
        yield reply_document(reply, by_id.get(reply.note_id) or reply.note)


def count_documents(session: Session) -> int:
    articles = session.scalar(select(func.count(Article.id))) or 0
    notes = session.scalar(select(func.count(Note.id)).where(Note.deleted_at.is_(None))) or 0
    replies = session.scalar(
        select(func.count(Reply.id)).join(Note, Reply.note_id == Note.id)
        .where(Reply.deleted_at.is_(None), Note.deleted_at.is_(None))
    ) or 0
    return articles + notes + replies


def rebuild(session: Session, index: SearchIndex, *, progress: Callable[[int], None] | None = None) -> int:
    """Index everything afresh; outbox rows written meanwhile are applied by the next sync."""
    start = session.scalar(select(func.max(SearchOutbox.id))) or 0
    index.clear()
    count = 0
    with index.writer() as writer:
        for document in expected_documents(session):
            writer.add_document(**document)
            count += 1
            if progress:
                progress(1)
    index.set_position({"applied": start, "gaps": {}})
    return count


@dataclass
class Drift:
    missing: list[str] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)
    stale: list[str] = field(default_factory=list)
    duplicate: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.missing or self.extra or self.stale or self.duplicate)


def verify(session: Session, index: SearchIndex, *, fix: bool = False) -> Drift:
    """Compare the index with the database; with fix, repair what differs."""
    expected = {document["key"]: document for document in expected_documents(session)}
    actual, duplicates = index.keys()
    drift = Drift(
        missing=sorted(set(expected) - set(actual)),
        extra=sorted(set(actual) - set(expected)),
        stale=sorted(k for k in set(expected) & set(actual) if str(expected[k]["stamp"]) != str(actual[k])),
        duplicate=sorted(duplicates & set(expected)),
    )
    if fix and not drift.ok:
        with index.writer() as writer:
            # update_document replaces only one copy of a key; a duplicated key needs every copy gone.
            for key in drift.extra + drift.stale + drift.duplicate:
                writer.delete_by_term("key", key)
            for key in drift.missing + drift.stale + drift.duplicate:
                writer.add_document(**expected[key])
    return drift


# Queries --------------------------------------------------------------------------------------

@dataclass
class Item:
    """One search result as a page or the CLI shows it."""

    kind: str  # update, case, question, reply or article
    id: int
    external_id: str | None
    title: str
    snippet: str  # safe HTML
    score: float
    url: str
    channel: Channel | None = None
    note: Note | None = None
    author: User | None = None
    created: datetime | None = None


@dataclass
class SearchPage:
    query: str
    items: list[Item]
    total: int
    page: int
    pages: int
    facets: dict[str, list[tuple[str, str, int]]]
    notices: list[str]


def _resolver(session: Session):
    def resolve(text: str) -> str | None:
        try:
            article, _ = content.parse_citation(session, text)
        except ValidationError:  # not "DSA Art. 34": perhaps the "dsa:34" form of the index
            slug, _, number = text.lower().partition(":")
            article = session.scalar(
                select(Article).join(Act).where(Act.slug == slug, Article.number == number)
            ) if number else None
            if article is None:
                return None
        return f"{article.act.slug}:{article.number}"
    return resolve


def _with_citations(parsed, resolve, schema) -> Query | None:
    """A citation typed as text ("DMA Art 6(7)") finds the article's index entry and the notes
    citing it, as well as text that names the article ("… Article 6 …")."""
    clauses = []
    for match in list(CITATION_IN_TEXT.finditer(parsed.text)):
        label = resolve(f"{match.group(1)} Art. {match.group(2)}{match.group(3)}")
        if label is None:
            continue
        parsed.text = parsed.text.replace(match.group(0), " ", 1)
        named = query_language.text_query(schema, f"{match.group(1)} article {match.group(2)}", relaxed=False)
        clauses.append(Or([Term("articles", label), named]) if named is not None else Term("articles", label))
    if not clauses:
        return None
    return clauses[0] if len(clauses) == 1 else And(clauses)


def visibility_filter(session: Session, user: User) -> Query:
    """What this reader may see, decided now: their channels' documents, and the regulation index."""
    channel_ids = session.scalars(select(Channel.id).where(auth.channel_is_visible(user))).all()
    return Or([Term("type", "article"), *(Term("channel_id", str(ident)) for ident in channel_ids)])


def search(
    session: Session, user: User, raw: str, *, today: date, sort: str = "relevance", page: int = 1,
    per_page: int = 20, facets: bool = True, index: SearchIndex | None = None, lang: str = "en",
    only_notes: bool = False,
) -> SearchPage:
    """Search as this user: results, counts, facets and snippets only from what they may see now.
    With only_notes, replies and the regulation index are left out (the API's note listing)."""
    index = index or index_for(current_app)
    if has_pending(session, index):
        try:
            sync(current_app._get_current_object(), timeout=2.0)
        except LockError:
            pass  # another worker holds the lock and is applying the same rows
    resolve = _resolver(session)
    schema = index.schema
    visible = visibility_filter(session, user)
    if only_notes:
        visible = And([visible, Term("type", "note")])

    def run(relaxed: bool):
        parsed = query_language.split(raw)
        whoosh_query = query_language.build(
            schema, parsed, today=today, resolve_article=resolve,
            also=_with_citations(parsed, resolve, schema), law_names=content.law_names(), relaxed=relaxed,
        )
        results = index.search(
            whoosh_query, filter_query=visible, sort="newest" if sort == "newest" else "relevance",
            page=page, per_page=per_page, facets=facets,
        )
        return parsed, results

    # Every word must match. Only when nothing has them all are documents with some of the words
    # shown, ranked by how many they have, and the page says so.
    parsed, results = run(relaxed=False)
    if results.total == 0:
        relaxed_parsed, relaxed_results = run(relaxed=True)
        if relaxed_results.total:
            parsed, results = relaxed_parsed, relaxed_results
            parsed.notices.append(_l("Nothing contains all of these words; these results contain some of them."))
    return SearchPage(
        query=raw, items=_hydrate(session, user, results), total=results.total, page=results.page,
        pages=results.pages, facets=_facet_labels(session, results, lang) if facets else {},
        notices=[str(notice) for notice in parsed.notices],  # in the reader's language, from here on text
    )


def _safe_snippet(snippet: str) -> str:
    return nh3.clean(snippet, tags={"mark"}, attributes={})


def _hydrate(session: Session, user: User, results: Results) -> list[Item]:
    note_ids = {hit.note_id for hit in results.hits if hit.type in ("note", "reply")}
    notes = {
        note.id: note for note in session.scalars(auth.visible_notes(user).where(Note.id.in_(note_ids)))
    } if note_ids else {}
    reply_ids = [hit.reply_id for hit in results.hits if hit.type == "reply"]
    replies = {
        reply.id: reply for reply in session.scalars(
            select(Reply).where(Reply.id.in_(reply_ids), Reply.deleted_at.is_(None)))
    } if reply_ids else {}
    article_ids = [int(hit.key.split(":")[1]) for hit in results.hits if hit.type == "article"]
    articles = {
        article.id: article for article in session.scalars(select(Article).where(Article.id.in_(article_ids)))
    } if article_ids else {}
    items = []
    for hit in results.hits:
        if hit.type == "article":
            article = articles.get(int(hit.key.split(":")[1]))
            if article is None:
                continue
            items.append(Item(
                kind="article", id=article.id, external_id=None,
                title=f"{article.act.short} Art. {article.number} {article.title_en or article.title_ja}",
                snippet=_safe_snippet(hit.snippet), score=hit.score,
                url=url_for("main.act", slug=article.act.slug, _anchor=f"art-{article.number}"),
            ))
            continue
        note = notes.get(hit.note_id)
        if note is None:  # deleted or no longer visible since it was indexed: never shown
            continue
        if hit.type == "reply":
            reply = replies.get(hit.reply_id)
            if reply is None:
                continue
            items.append(Item(
                kind="reply", id=reply.id, external_id=note.external_id, title=note.title,
                snippet=_safe_snippet(hit.snippet), score=hit.score,
                url=url_for("notes.show", note_id=note.id, _anchor=f"reply-{reply.id}"),
                channel=note.channel, note=note, author=reply.author, created=reply.created_at,
            ))
        else:
            items.append(Item(
                kind=note.kind, id=note.id, external_id=note.external_id, title=note.title,
                snippet=_safe_snippet(hit.snippet), score=hit.score,
                url=url_for("notes.show", note_id=note.id), channel=note.channel, note=note,
                author=note.author, created=note.created_at,
            ))
    return items


def _facet_labels(session: Session, results: Results, lang: str) -> dict[str, list[tuple[str, str, int]]]:
    topics = {topic.slug: topic.label(lang) for topic in session.scalars(select(Topic))}
    slugs = list(results.facets.get("channel", {}))
    channels = {
        channel.slug: channel.name(lang)
        for channel in session.scalars(select(Channel).where(Channel.slug.in_(slugs)))
    } if slugs else {}

    def ordered(name: str, label) -> list[tuple[str, str, int]]:
        counts = results.facets.get(name, {})
        return sorted(((value, label(value), n) for value, n in counts.items()), key=lambda row: -row[2])

    return {
        "kind": ordered("kind", lambda value: value),
        "topic": ordered("topics", lambda value: topics.get(value, value)),
        "channel": ordered("channel", lambda value: channels.get(value, value)),
    }
