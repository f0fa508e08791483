"""The Whoosh index behind the portal's own interface: add, remove, search, clear.

It knows documents (dicts) and queries, not models: services/search.py builds the documents and
decides what a reader may see. One SearchIndex per process and index directory.
"""
from __future__ import annotations

import copy
import json
import os
import secrets
import threading
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np
from whoosh import collectors, highlight, index
from whoosh.codec.base import Segment
from whoosh.fields import DATETIME, ID, KEYWORD, STORED, TEXT, Schema
from whoosh.filedb.filestore import FileStorage, RamStorage
from whoosh.matching import AndNotMatcher
from whoosh.query import Query, Term
from whoosh.reading import EmptyReader, MultiReader, SegmentReader
from whoosh.searching import Results as WhooshResults
from whoosh.searching import Searcher
from whoosh.util import IDCHARS
from whoosh.writing import LockError

from portal.search import vector
from portal.search.analysis import BigramHighlighter, bilingual_analyzer


def _and_not_find_first(self):
    # Whoosh 2.7.4 checks the exclusion for the first document of `a` only when `b` starts on that
    # same document. When `b` starts earlier, "platform -users" returned the first "platform"
    # document of each segment even if it contained "users". _find_next() skips `b` forward first.
    if self.a.is_active() and self.b.is_active():
        self._find_next()


AndNotMatcher._find_first = _and_not_find_first


def _unique_segment_id(cls, size: int = 16) -> str:
    # Whoosh names a new segment with the `random` module. Whatever seeds it (Hypothesis does, for
    # each example it runs) makes a later commit pick the name of an existing segment; that commit
    # then fails on an assertion and the change waits in the outbox. Names come from the OS instead.
    return "".join(secrets.choice(IDCHARS) for _ in range(size))


Segment._random_id = classmethod(_unique_segment_id)

POSITION_FILE = "outbox_position.json"
FACETS = ("kind", "topics", "channel")
# Segments below this size are merged out of band (merge_small_segments), not after each write.
SMALL_SEGMENT = 10_000


def _abandon(writer) -> None:
    """Cancel a writer whose work or commit failed, and give its lock back now in any case: left to
    the garbage collector, the lock made every later writer in this process wait until it ran."""
    if writer.is_closed:
        return
    try:
        writer.cancel()
    except Exception:  # noqa: BLE001 - the caller re-raises the failure that matters
        if writer.writelock is not None:  # cancel() failed before it released the lock
            writer.writelock.release()


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


def _leaves(searcher) -> list:
    return searcher.subsearchers or [(searcher, 0)]


class _TopRecording(collectors.TopCollector):
    """The top N in a heap; every match is recorded and scored once (the total and facets need all)."""

    def prepare(self, top_searcher, q, context):
        super().prepare(top_searcher, q, context)
        self.matched: list[int] = []

    def _collect(self, global_docnum, score):
        self.matched.append(global_docnum)
        key = super()._collect(global_docnum, score)
        # TopCollector raises minscore as the heap fills, and ScoredCollector.matches() then
        # swaps in a matcher without the sub-queries whose max_quality() cannot reach it. In
        # Whoosh 2.7.4 those bounds are wrong for an Or of three or more clauses on small
        # indexes (ArrayUnionMatcher's is a max, not a sum), which silently drops top hits.
        self.minscore = 0
        return key


class _NewestRecording(collectors.SortingCollector):
    def prepare(self, top_searcher, q, context):
        super().prepare(top_searcher, q, context)
        self.matched: list[int] = []

    def collect(self, sub_docnum):
        self.matched.append(self.offset + sub_docnum)
        return super().collect(sub_docnum)


class _PositionalFragmentScorer(highlight.BasicFragmentScorer):
    """Equally scored fragments in text order: Whoosh breaks those ties by id(), i.e. at random."""

    def __call__(self, fragment):
        return super().__call__(fragment) - fragment.startchar * 1e-9


def _reader_reusing(storage, schema, segments, generation, reuse):
    """whoosh.index.FileIndex._reader, reusing the open readers of segments that are still there.

    Whoosh 2.7.4 keys its reusable readers by generation but looks them up by segment id, so a
    refresh reopens every segment. A reused reader is a shallow copy pointing at the new Segment,
    whose deletions may have changed (terms and per-document files are shared).
    """
    if not segments:
        return EmptyReader(schema)
    old = {reader.segment().segment_id(): reader for reader, _ in reuse.leaf_readers()
           if reader.segment() is not None}

    def open_reader(segment):
        reader = old.get(segment.segment_id())
        if reader is None or reader.is_closed:
            return SegmentReader(storage, schema, segment, generation=generation)
        clone = copy.copy(reader)
        clone._segment, clone._gen = segment, generation
        clone._perdoc = copy.copy(reader._perdoc)
        clone._perdoc._segment = segment
        return clone

    if len(segments) == 1:
        return open_reader(segments[0])
    # Readers of merged-away segments are not closed: a search in another thread may still hold
    # the previous searcher. They are released with it.
    return MultiReader([open_reader(segment) for segment in segments], generation=generation)


class _DocnumWriter:
    """A writer whose update_document and delete_by_term find documents through the index's shared
    searcher (at the writer's base generation while the writer holds the lock) instead of opening
    a second reader over every segment, as Whoosh's own do (about 120 ms at 100,000 notes).
    Whoosh's semantics are kept: only committed documents are replaced."""

    def __init__(self, writer, searcher):
        self._writer, self._searcher = writer, searcher

    def __getattr__(self, name):
        return getattr(self._writer, name)

    def update_document(self, **fields):
        docnum = self._searcher.document_number(key=fields["key"])
        if docnum is not None:
            self._writer.delete_document(docnum)
        self._writer.add_document(**fields)

    def delete_by_term(self, fieldname, text, searcher=None):
        docnums = list(self._searcher.docs_for_query(Term(fieldname, text)))
        for docnum in docnums:
            self._writer.delete_document(docnum)
        return len(docnums)


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
        # Workers starting together on a fresh host must not each create the index: Whoosh's create
        # clears the directory first, and a second create fails on the table of contents (or wipes
        # what the first worker's start-up sync has already written).
        creating = self._storage.lock("PORTAL_CREATE")
        creating.acquire(blocking=True)
        try:
            if index.exists(self._storage):
                self._ix = self._storage.open_index()
            else:
                self._ix = self._storage.create_index(make_schema())
        finally:
            creating.release()
        self._searcher = None
        self._searcher_lock = threading.Lock()
        self._arrays = vector.ArrayCache()

    # Writing ---------------------------------------------------------------------------------

    @contextmanager
    def writer(self, timeout: float = 10.0, merge: bool = True) -> Iterator:
        """The index writer, waiting up to `timeout` seconds for another process's lock.

        merge=False commits without merging segments (a few ms instead of up to ~170 ms at
        100,000 notes); merge_small_segments() catches up later.
        """
        writer = self._ix.writer(timeout=timeout, delay=0.02)
        try:
            searcher = self.searcher()  # under the lock: at the writer's base generation
            yield (_DocnumWriter(writer, searcher)
                   if searcher.reader().generation() == writer.generation - 1 else writer)
            writer.commit(merge=merge)
        except BaseException:
            _abandon(writer)
            raise

    def small_segments(self) -> int:
        return sum(1 for segment in self._ix._segments() if segment.doc_count_all() < SMALL_SEGMENT)

    def merge_small_segments(self, threshold: int = 8) -> bool:
        """Merge the small segments left by unmerged commits once there are `threshold` of them."""
        if self.small_segments() < threshold:
            return False
        with self.writer():  # an empty commit with Whoosh's MERGE_SMALL policy
            pass
        return True

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
        with self._searcher_lock:
            self._searcher = None
            self._arrays = vector.ArrayCache()

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
                self._searcher = Searcher(self._refreshed_reader(), fromindex=self._ix)
                self._arrays.prune({sub.reader().segment().segment_id() for sub, _ in _leaves(self._searcher)
                                    if sub.reader().segment() is not None})
            return self._searcher

    def _refreshed_reader(self, attempts: int = 10):
        # A writer in another process may delete a merged-away segment between our reading the table
        # of contents and opening that segment's files (a 500 under load): read it again, as Whoosh's
        # own FileIndex.reader does.
        for attempt in range(attempts):
            toc = self._ix._read_toc()
            try:
                return _reader_reusing(self._ix.storage, toc.schema, toc.segments, toc.generation,
                                       self._searcher.ixreader)
            except FileNotFoundError:
                if attempt == attempts - 1:
                    raise
                time.sleep(0.05)

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
        engine: str = "auto",
    ) -> Results:
        """Run a query restricted by filter_query; facet counts come from the same restricted set.

        engine: "auto" evaluates on arrays (search.vector) what it can and the rest with Whoosh;
        "whoosh" or "vector" forces one (tests compare them; "vector" raises Unsupported).
        """
        searcher = self.searcher()
        page = max(1, page)
        if engine != "whoosh":
            try:
                return self._search_arrays(searcher, query, filter_query, sort, page, per_page, facets)
            except vector.Unsupported:
                if engine == "vector":
                    raise
        try:
            masks = self._allowed_masks(searcher, filter_query)
            allowed = None if masks is None else {
                offset + docnum for (_, offset), mask in zip(_leaves(searcher), masks, strict=True)
                if mask is not None for docnum in np.flatnonzero(mask).tolist()}
        except vector.Unsupported:
            allowed = filter_query  # FilterCollector takes a query too (and walks it per search)
        # One scored pass. Whoosh's own groupedby/terms=True would step through every match again.
        inner = (_NewestRecording("created", limit=page * per_page, reverse=True) if sort == "newest"
                 else _TopRecording(limit=page * per_page, usequality=False))
        collector = collectors.FilterCollector(inner, allow=allowed) if allowed is not None else inner
        searcher.search_with_collector(query, collector)
        results = collector.results()
        hits = self._hits(results, page, per_page)
        return Results(hits=hits, total=len(inner.matched), page=page, per_page=per_page,
                       facets=self._facets(searcher, inner.matched) if facets else {})

    def _search_arrays(self, searcher, query, filter_query, sort, page, per_page, facets) -> Results:
        """search() on numpy arrays: the same total, facets, hits, order and scores as Whoosh's."""
        limit = page * per_page
        newest = sort == "newest"
        total = 0
        counts: dict[str, Counter] = {name: Counter() for name in FACETS}
        keys, docnums = [], []
        allowed = self._allowed_masks(searcher, filter_query)
        for i, (sub, offset) in enumerate(_leaves(searcher)):
            if sub.reader().segment() is None:
                continue  # an empty index
            segment = vector.Segment(sub.reader(), self._arrays)
            mask, score = vector.Evaluator(searcher, segment, scored=not newest).run(query)
            mask &= segment.live()
            if allowed is not None:
                mask &= allowed[i]
            local = np.flatnonzero(mask)
            if not len(local):
                continue
            total += len(local)
            if facets:
                _count_facets(segment, mask, counts)
            keys.append(segment.sort_keys("created")[local] if newest else score[local])
            docnums.append(local + offset)
        top_n = []
        if keys:
            key, docnum = np.concatenate(keys), np.concatenate(docnums)
            if len(key) > limit:  # everything that ties with the limit-th key, then exact order
                kth = np.partition(key, len(key) - limit)[len(key) - limit]
                key, docnum = key[key >= kth], docnum[key >= kth]
            # Whoosh's orders: by score, ties by ascending docnum (TopCollector); by newest,
            # ties by descending docnum (SortingCollector sorts (key, docnum) in reverse).
            order = (np.lexsort((docnum, key))[::-1] if newest else np.lexsort((docnum, -key)))[:limit]
            convert = int if newest else float
            top_n = [(convert(k), int(d)) for k, d in zip(key[order].tolist(), docnum[order].tolist())]
        results = WhooshResults(searcher, query, top_n)
        return Results(hits=self._hits(results, page, per_page), total=total, page=page, per_page=per_page,
                       facets=_facet_dict(counts) if facets else {})

    def warm(self) -> None:
        """Read what every query needs from each segment (deletions, field lengths, dates, facet
        values) now rather than in the first search."""
        searcher = self.searcher()
        scored = [name for name, fieldobj in searcher.schema.items() if fieldobj.scorable]
        for sub, _ in _leaves(searcher):
            if sub.reader().segment() is None:
                continue
            segment = vector.Segment(sub.reader(), self._arrays)
            segment.live()
            segment.sort_keys("created")
            for name in scored:
                segment.lengths(name)
            for name in FACETS:
                segment.facet(name)

    def _allowed_masks(self, searcher, filter_query):
        """The filter as a boolean array per segment, built once per searcher."""
        if filter_query is None:
            return None
        memo = searcher.__dict__.setdefault("_portal_allowed_masks", {})
        key = repr(filter_query)
        if key not in memo:
            memo[key] = [
                vector.Evaluator(searcher, vector.Segment(sub.reader(), self._arrays), scored=False)
                .run(filter_query)[0] if sub.reader().segment() is not None else None
                for sub, _ in _leaves(searcher)]
        return memo[key]

    def _hits(self, results, page: int, per_page: int) -> list[Hit]:
        results.highlighter = BigramHighlighter(
            fragmenter=highlight.ContextFragmenter(maxchars=240, surround=60),
            scorer=_PositionalFragmentScorer(),
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
        return hits

    def _facets(self, searcher, matched: list[int]) -> dict[str, dict[str, int]]:
        """Facet counts of the matched documents (global docnums), per segment."""
        counts: dict[str, Counter] = {name: Counter() for name in FACETS}
        matched_array = np.array(matched, dtype=np.int64)
        for sub, offset in _leaves(searcher):
            if sub.reader().segment() is None:
                continue
            segment = vector.Segment(sub.reader(), self._arrays)
            local = matched_array[(matched_array >= offset) & (matched_array < offset + segment.size)] - offset
            if len(local):
                mask = np.zeros(segment.size, dtype=bool)
                mask[local] = True
                _count_facets(segment, mask, counts)
        return _facet_dict(counts)


def _count_facets(segment: vector.Segment, mask: np.ndarray, counts: dict[str, Counter]) -> None:
    for name in FACETS:
        values, docs, codes = segment.facet(name)
        if values:
            tally = np.bincount(codes[mask[docs]], minlength=len(values))
            for value, n in zip(values, tally.tolist(), strict=True):
                if n:
                    counts[name][value] += n


def _facet_dict(counts: dict[str, Counter]) -> dict[str, dict[str, int]]:
    # Values in order; an empty value (a document without a kind or topic) is no facet.
    return {name: {str(value): n for value, n in sorted(c.items()) if value} for name, c in counts.items()}


__all__ = ["Hit", "LockError", "Results", "SearchIndex", "make_schema"]
