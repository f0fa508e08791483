"""The portal's queries evaluated on numpy arrays, with Whoosh's own BM25F scores and tie order.

Whoosh steps through every matched document in Python (5-30 µs each), and exact ranking, the
total and the facet counts need every match: "platform" matches half of 100,000 notes. Here a
segment's postings become arrays once (docnums, weights, positions for phrases, field lengths),
cached by segment id: a segment never changes its document numbers (a deletion only marks a
document, a merge writes a new segment), so after a write only the new small segment is read.
A query is then evaluated per segment on dense arrays (a match mask and a score per document)
with the same arithmetic as whoosh.scoring.bm25, in the same order of additions for Or.

Only the shapes portal/search/query.py builds are handled: Term, And, Or, AndNot, Not, Every,
Phrase (adjacent words), date ranges, ConstantScoreQuery. Anything else raises Unsupported and
SearchIndex uses Whoosh itself. tests/test_search_vector.py checks both give the same answers.
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable

import numpy as np
from whoosh import query as wq
from whoosh import scoring
from whoosh.codec.whoosh3 import LENGTHS_COLUMN, W3LeafMatcher, _lenfield
from whoosh.columns import NumericColumn
from whoosh.util.numeric import byte_to_length

CACHE_BYTES = 512 * 2**20
# Whoosh's field lengths are stored as one byte each; this decodes all 256 values at once.
_LENGTHS = np.array([byte_to_length(b) or 0 for b in range(256)], dtype=np.float64)


class Unsupported(Exception):
    """A query (or index) this evaluator does not reproduce exactly: use Whoosh."""


class ArrayCache:
    """Arrays computed from one segment, least recently used first out above a byte budget."""

    def __init__(self, budget: int = CACHE_BYTES):
        self.budget = budget
        self.used = 0
        self._items: OrderedDict[tuple, tuple[object, int]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple, build: Callable[[], object]):
        with self._lock:
            item = self._items.get(key)
            if item is not None:
                self._items.move_to_end(key)
                return item[0]
        value = build()  # outside the lock: two threads may build the same arrays, once each
        size = _nbytes(value)
        with self._lock:
            if key not in self._items:
                self._items[key] = (value, size)
                self.used += size
            while self.used > self.budget and len(self._items) > 1:
                _, (_, dropped) = self._items.popitem(last=False)
                self.used -= dropped
        return value

    def prune(self, live: set[str]) -> None:
        """Forget the segments merged away."""
        with self._lock:
            for key in [key for key in self._items if key[0] not in live]:
                self.used -= self._items.pop(key)[1]


def _nbytes(value) -> int:
    if isinstance(value, np.ndarray):
        return value.nbytes + 100
    if isinstance(value, tuple | list):
        return sum(_nbytes(v) for v in value) + 100
    return 100


class Segment:
    """One segment's arrays, read through the cache."""

    def __init__(self, reader, cache: ArrayCache):
        self.reader = reader
        segment = reader.segment()
        self.id = segment.segment_id()
        self.size = reader.doc_count_all()
        self.deleted = segment.deleted_count()
        self.cache = cache

    def live(self) -> np.ndarray:
        def build():
            mask = np.ones(self.size, dtype=bool)
            if self.deleted:
                mask[np.fromiter(self.reader.segment().deleted_docs(), dtype=np.int64)] = False
            return mask
        return self.cache.get((self.id, "live", self.deleted), build)

    def postings(self, fieldname: str, btext: bytes) -> tuple[np.ndarray, np.ndarray]:
        """Docnums (ascending) and weights of a term, deleted documents included."""
        return self.cache.get((self.id, "post", fieldname, btext),
                              lambda: self._read(fieldname, btext, positions=False))

    def positions(self, fieldname: str, btext: bytes) -> np.ndarray:
        """(docnum << 32) | position for every occurrence of a term, ascending."""
        return self.cache.get((self.id, "pos", fieldname, btext),
                              lambda: self._read(fieldname, btext, positions=True))

    def _read(self, fieldname: str, btext: bytes, *, positions: bool):
        reader = self.reader
        if (fieldname, btext) not in reader:
            return np.zeros(0, np.int64) if positions else (np.zeros(0, np.int64), np.zeros(0))
        fmt = reader.schema[fieldname].format
        matcher = reader._terms.matcher(fieldname, btext, fmt)
        ids: list[int] = []
        weights: list[float] = []
        values: list[bytes] = []
        if isinstance(matcher, W3LeafMatcher):  # a block at a time, not a posting at a time
            while True:
                matcher._read_ids()
                ids.extend(matcher._ids)
                if positions:
                    matcher._read_values()
                    values.extend(matcher._values)
                else:
                    matcher._read_weights()
                    weights.extend(matcher._weights)
                if matcher._lastblock:
                    break
                matcher._goto(matcher._nextoffset)
        else:
            while matcher.is_active():
                ids.append(matcher.id())
                weights.append(matcher.weight())
                if positions:
                    values.append(matcher.value())
                matcher.next()
        docs = np.array(ids, dtype=np.int64)
        if not positions:
            return docs, np.array(weights, dtype=np.float32).astype(np.float64)
        decoded = [fmt.decode_positions(value) for value in values]
        counts = np.fromiter((len(p) for p in decoded), dtype=np.int64, count=len(decoded))
        flat = np.fromiter((pos for p in decoded for pos in p), dtype=np.int64, count=int(counts.sum()))
        return (np.repeat(docs, counts) << 32) | flat

    def lengths(self, fieldname: str) -> np.ndarray:
        """Every document's length of a field, as Whoosh's scorer sees it (one byte, decoded)."""
        def build():
            perdoc = self.reader._perdoc
            column = perdoc._cached_reader(_lenfield(fieldname), LENGTHS_COLUMN)
            if column is None:
                return np.ones(self.size)
            return _LENGTHS[_column(column, self.size, "B")]
        return self.cache.get((self.id, "len", fieldname), build)

    def sort_keys(self, fieldname: str) -> np.ndarray:
        """The sort key of every document in a sortable numeric field (what Whoosh sorts by)."""
        def build():
            column = self.reader.column_reader(fieldname)
            column = getattr(column, "_reader", column)  # TranslatingColumnReader sorts by the raw values
            if not isinstance(column, NumericColumn.Reader) or column._reverse:
                raise Unsupported(f"sorting by {fieldname}")
            return _column(column, self.size, column._typecode)
        return self.cache.get((self.id, "sort", fieldname), build)

    def facet(self, fieldname: str) -> tuple[list, np.ndarray, np.ndarray]:
        """A facet field's values, and for each (docnum, value index) pair of the segment."""
        def build():
            fieldobj = self.reader.schema[fieldname]
            values, docs, codes = [], [], []
            for btext in self.reader.lexicon(fieldname):
                ids, _ = self._read(fieldname, btext, positions=False)
                codes.append(np.full(len(ids), len(values), dtype=np.int64))
                docs.append(ids)
                values.append(fieldobj.from_bytes(btext))
            if not values:
                return [], np.zeros(0, np.int64), np.zeros(0, np.int64)
            return values, np.concatenate(docs), np.concatenate(codes)
        return self.cache.get((self.id, "facet", fieldname), build)


def _column(column, size: int, typecode: str) -> np.ndarray:
    """A fixed-width numeric column as an array (Whoosh's own reader unpacks one value per call)."""
    width = np.dtype(typecode).itemsize
    count = min(column._count, size)
    raw = column._dbfile.get(column._basepos, count * width)
    values = np.frombuffer(raw, dtype=">" + typecode).astype(np.dtype(typecode).newbyteorder("="))
    if count < size:
        values = np.concatenate([values, np.full(size - count, column._default, dtype=values.dtype)])
    return values


def _intersect(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The values in both of two ascending arrays without repeats (a binary search per value of
    the shorter one; np.intersect1d would sort both again)."""
    if len(a) > len(b):
        a, b = b, a
    if not len(a):
        return a
    at = np.searchsorted(b, a)
    at[at == len(b)] = 0
    return a[b[at] == a]


class Evaluator:
    """One query on one segment: a match mask and, when scored, Whoosh's score of each document."""

    def __init__(self, top, segment: Segment, *, scored: bool):
        self.top = top  # the top-level searcher: idf and average field lengths are global
        self.segment = segment
        self.n = segment.size
        self.scored = scored
        weighting = top.weighting
        if scored and type(weighting) is not scoring.BM25F:
            raise Unsupported(f"weighting {type(weighting).__name__}")
        self.weighting = weighting

    def run(self, node) -> tuple[np.ndarray, np.ndarray | None]:
        if getattr(node, "boost", 1.0) != 1.0:
            raise Unsupported("boosts")
        kind = type(node)
        if kind is wq.Term:
            return self.term(node.fieldname, node.text)
        if kind is wq.And:
            return self.all_of(node.subqueries)
        if kind is wq.Or:
            if node.minmatch or node.scale:
                raise Unsupported("Or with minmatch or scale")
            return self.any_of(node.subqueries)
        if kind is wq.AndNot:
            mask, score = self.run(node.a)
            excluded, _ = self.run(node.b)
            return self._only(mask & ~excluded, score)
        if kind is wq.Not:
            excluded, _ = self.run(node.query)
            return self._constant(self.segment.live() & ~excluded, 1.0)  # InverseMatcher's score
        if kind is wq.Every and node.fieldname in (None, "", "*"):
            return self._constant(self.segment.live().copy(), 1.0)
        if kind is wq.Phrase:
            return self.phrase(node)
        if kind in (wq.NumericRange, wq.DateRange):
            if not node.constantscore:
                raise Unsupported("scored range")
            return self.run(node._compile_query(self.segment.reader))
        if kind is wq.ConstantScoreQuery:
            mask, _ = Evaluator(self.top, self.segment, scored=False).run(node.child)
            return self._constant(mask, node.score)
        if kind is wq.TermRange and not self.scored:  # the parts of a date range
            mask = np.zeros(self.n, dtype=bool)
            for btext in node._btexts(self.segment.reader):
                mask[self.segment.postings(node.fieldname, btext)[0]] = True
            return mask, None
        if node is wq.NullQuery:
            return np.zeros(self.n, dtype=bool), self._zeros()
        raise Unsupported(kind.__name__)

    def _zeros(self) -> np.ndarray | None:
        return np.zeros(self.n) if self.scored else None

    def _constant(self, mask: np.ndarray, value: float):
        if not self.scored:
            return mask, None
        score = np.zeros(self.n)
        score[mask] = value
        return mask, score

    def _only(self, mask: np.ndarray, score: np.ndarray | None):
        if score is not None:
            score = np.where(mask, score, 0.0)
        return mask, score

    def _btext(self, fieldname: str, text) -> bytes | None:
        schema = self.top.schema
        if fieldname not in schema:
            return None
        try:
            return schema[fieldname].to_bytes(text)
        except ValueError:
            return None

    def term(self, fieldname: str, text):
        mask = np.zeros(self.n, dtype=bool)
        btext = self._btext(fieldname, text)
        if btext is None:
            return mask, self._zeros()
        docs, weights = self.segment.postings(fieldname, btext)
        mask[docs] = True
        if not self.scored:
            return mask, None
        score = np.zeros(self.n)
        score[docs] = self._term_scores(fieldname, btext, docs, weights)
        return mask, score

    def _term_scores(self, fieldname: str, btext: bytes, docs: np.ndarray, weights: np.ndarray) -> np.ndarray:
        """whoosh.scoring.BM25FScorer (or WeightScorer for unscored fields), for many documents."""
        if not self.top.schema[fieldname].scorable:
            return weights
        w = self.weighting
        B = w._field_B.get(fieldname, w.B)
        K1 = w.K1
        idf = self.top.idf(fieldname, btext)
        avgfl = self.top.avg_field_length(fieldname) or 1
        tf = weights
        fl = self.segment.lengths(fieldname)[docs]
        # The same operations in the same order as whoosh.scoring.bm25, so the same doubles.
        return idf * ((tf * (K1 + 1)) / (tf + K1 * ((1 - B) + B * fl / avgfl)))

    def all_of(self, queries):
        # A conjunction's score is the sum of its parts' scores (IntersectionMatcher).
        results = [self.run(q) for q in queries]
        mask = results[0][0].copy()
        for other, _ in results[1:]:
            mask &= other
        if not self.scored:
            return mask, None
        score = results[0][1].copy()
        for _, other in results[1:]:
            score += other
        return self._only(mask, score)

    def any_of(self, queries):
        # A disjunction's score is the sum of the matching parts' scores, added up as Whoosh's
        # binary tree of UnionMatchers does (make_binary_tree): the same rounding.
        results = [self.run(q) for q in queries]

        def tree(items):
            if len(items) == 1:
                return items[0]
            half = len(items) // 2
            (amask, ascore), (bmask, bscore) = tree(items[:half]), tree(items[half:])
            return amask | bmask, (ascore + bscore if self.scored else None)

        return tree(results)

    def phrase(self, node):
        if node.slop != 1:
            raise Unsupported("phrase with slop")
        mask = np.zeros(self.n, dtype=bool)
        btexts = [self._btext(node.fieldname, word) for word in node.words]
        if not btexts or any(b is None or (node.fieldname, b) not in self.segment.reader for b in btexts):
            return mask, self._zeros()
        # Word i at position p + i for every i: intersect (docnum << 32 | position - i).
        starts = None
        for i, btext in enumerate(btexts):
            keys = self.segment.positions(node.fieldname, btext)
            if i:
                keys = keys[(keys & 0xFFFFFFFF) >= i] - i
            starts = keys if starts is None else _intersect(starts, keys)
            if not len(starts):
                return mask, self._zeros()
        docs = starts >> 32
        docs = docs[np.concatenate(([True], docs[1:] != docs[:-1]))]  # sorted: drop repeats
        mask[docs] = True
        if not self.scored:
            return mask, None
        # SpanNear2 scores as the IntersectionMatcher tree of its words.
        parts = []
        for btext in btexts:
            all_docs, weights = self.segment.postings(node.fieldname, btext)
            at = np.searchsorted(all_docs, docs)
            parts.append(self._term_scores(node.fieldname, btext, docs, weights[at]))

        def tree(items):
            if len(items) == 1:
                return items[0]
            half = len(items) // 2
            return tree(items[:half]) + tree(items[half:])

        score = np.zeros(self.n)
        score[docs] = tree(parts)
        return mask, score
