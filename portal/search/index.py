"""The Whoosh index behind the portal's own interface: add, remove, search, clear.

It knows documents (dicts) and queries, not models: services/search.py builds the documents and
decides what a reader may see. One SearchIndex per process and index directory.
"""
from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from whoosh import highlight, index, sorting
from whoosh.fields import DATETIME, ID, KEYWORD, STORED, TEXT, Schema
from whoosh.filedb.filestore import FileStorage, RamStorage
from whoosh.query import Query
from whoosh.writing import LockError

from portal.search.analysis import BigramHighlighter, bilingual_analyzer

POSITION_FILE = "outbox_position.json"


def make_schema() -> Schema:
    analyzer = bilingual_analyzer()

    def text(boost: float = 1.0, stored: bool = False) -> TEXT:
        # multitoken_query="phrase": a run of Japanese bigrams in a query must match in sequence.
        return TEXT(analyzer=analyzer, phrase=True, stored=stored, field_boost=boost,
                    multitoken_query="phrase")

    return Schema(
        key=ID(stored=True, unique=True),  # "note:12", "reply:34", "article:56"
        type=ID(stored=True),
        note_id=ID(stored=True),
        reply_id=STORED(),
        channel_id=ID(stored=True),
        channel=ID(),
        kind=ID(stored=True),
        status=ID(),
        qstate=ID(),
        topics=KEYWORD(commas=True, lowercase=True),
        articles=KEYWORD(commas=True, lowercase=True),
        author=KEYWORD(commas=True, lowercase=True),
        org=ID(),
        side=ID(),
        lang=ID(stored=True),
        title=text(boost=3.0, stored=True),
        body=text(stored=True),
        # Case reference, platforms, legal basis and cited articles as searchable text.
        extra=text(boost=2.0),
        created=DATETIME(stored=True, sortable=True),
        answer_by=DATETIME(),
        stamp=STORED(),  # what verify compares to spot a stale document
    )


@dataclass
class Hit:
    key: str
    type: str
    note_id: int
    reply_id: int | None
    score: float
    title: str
    snippet: str  # HTML: escaped text with <mark> around matches
    created: datetime | None


@dataclass
class Results:
    hits: list[Hit]
    total: int
    page: int
    per_page: int
    facets: dict[str, dict[str, int]] = field(default_factory=dict)

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))


class SearchIndex:
    """A Whoosh index in a directory (or in memory) plus how far it has applied the outbox."""

    def __init__(self, directory: str | None):
        self.directory = Path(directory) if directory else None
        if self.directory is None:
            self._storage = RamStorage()
            self._position: dict = {"applied": 0, "gaps": {}}
        else:
            self.directory.mkdir(parents=True, exist_ok=True)
            self._storage = FileStorage(str(self.directory))
        if index.exists(self._storage):
            self._ix = self._storage.open_index()
        else:
            self._ix = self._storage.create_index(make_schema())
        self._searcher = None
        self._searcher_lock = threading.Lock()

    # Writing ---------------------------------------------------------------------------------

    @contextmanager
    def writer(self, timeout: float = 10.0) -> Iterator:
        """The index writer, waiting up to `timeout` seconds for another process's lock."""
        writer = self._ix.writer(timeout=timeout, delay=0.02)
        try:
            yield writer
        except BaseException:
            writer.cancel()
            raise
        writer.commit()

    def add(self, documents: Iterable[dict], writer=None) -> None:
        """Add or replace documents (by key)."""
        with self._maybe_writer(writer) as w:
            for document in documents:
                w.update_document(**document)

    def remove(self, keys: Iterable[str], writer=None) -> None:
        with self._maybe_writer(writer) as w:
            for key in keys:
                w.delete_by_term("key", key)

    def remove_note(self, note_id: int, writer=None) -> None:
        """Remove a note and every reply under it."""
        with self._maybe_writer(writer) as w:
            w.delete_by_term("note_id", str(note_id))

    def clear(self) -> None:
        """Empty the index and forget the outbox position."""
        self._ix = self._storage.create_index(make_schema())
        self.set_position({"applied": 0, "gaps": {}})
        self._searcher = None

    @contextmanager
    def _maybe_writer(self, writer):
        if writer is not None:
            yield writer
        else:
            with self.writer() as own:
                yield own

    # Outbox position -------------------------------------------------------------------------

    def position(self) -> dict:
        if self.directory is None:
            return dict(self._position)
        try:
            return json.loads((self.directory / POSITION_FILE).read_text())
        except FileNotFoundError:
            return {"applied": 0, "gaps": {}}

    def set_position(self, position: dict) -> None:
        """Record how far the outbox is applied; written atomically after the index commit."""
        if self.directory is None:
            self._position = dict(position)
            return
        temporary = self.directory / f".{POSITION_FILE}.{os.getpid()}"
        temporary.write_text(json.dumps(position))
        os.replace(temporary, self.directory / POSITION_FILE)

    # Reading ---------------------------------------------------------------------------------

    @property
    def schema(self) -> Schema:
        return self._ix.schema

    def searcher(self):
        """A shared searcher, refreshed when another writer (or process) has committed."""
        with self._searcher_lock:
            if self._searcher is None:
                self._searcher = self._ix.searcher()
            elif not self._searcher.up_to_date():
                self._searcher = self._searcher.refresh()
            return self._searcher

    def keys(self) -> tuple[dict[str, object], set[str]]:
        """Every document key with its stamp, and the keys held more than once, for verify."""
        stamps: dict[str, object] = {}
        duplicates: set[str] = set()
        for fields in self.searcher().all_stored_fields():
            if fields["key"] in stamps:
                duplicates.add(fields["key"])
            stamps[fields["key"]] = fields.get("stamp")
        return stamps, duplicates

    def doc_count(self) -> int:
        return self.searcher().doc_count()

    def search(
        self,
        query: Query,
        *,
        filter_query: Query | None,
        sort: str = "relevance",
        page: int = 1,
        per_page: int = 20,
        facets: bool = True,
    ) -> Results:
        """Run a query restricted by filter_query; facet counts come from the same restricted set."""
        searcher = self.searcher()
        groups = None
        if facets:
            groups = {
                "kind": sorting.FieldFacet("kind"),
                "topics": sorting.FieldFacet("topics", allow_overlap=True),
                "channel": sorting.FieldFacet("channel"),
            }
        kwargs = {"filter": filter_query, "groupedby": groups, "maptype": sorting.Count if groups else None}
        if sort == "newest":
            kwargs["sortedby"] = "created"
            kwargs["reverse"] = True
        page = max(1, page)
        results = searcher.search(query, limit=page * per_page, terms=True, **kwargs)
        results.highlighter = BigramHighlighter(
            fragmenter=highlight.ContextFragmenter(maxchars=240, surround=60),
            formatter=highlight.HtmlFormatter(tagname="mark", between=" … "),
        )
        hits = []
        for hit in results[(page - 1) * per_page: page * per_page]:
            snippet = (hit.highlights("body") if "body" in hit else "") or (
                hit.highlights("title") if "title" in hit else "")
            if not snippet:
                snippet = highlight.htmlescape((hit.get("body") or "")[:240])
            hits.append(Hit(
                key=hit["key"], type=hit["type"], note_id=int(hit["note_id"] or 0),
                reply_id=hit.get("reply_id"), score=float(hit.score or 0.0), title=hit.get("title") or "",
                snippet=snippet, created=hit.get("created"),
            ))
        counts = {}
        if groups:
            for name in groups:
                counts[name] = {str(value): count for value, count in results.groups(name).items() if value}
        return Results(hits=hits, total=len(results), page=page, per_page=per_page, facets=counts)


__all__ = ["Hit", "LockError", "Results", "SearchIndex", "make_schema"]
