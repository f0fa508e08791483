"""The array evaluator (portal/search/vector.py) gives exactly Whoosh's answers.

Thousands of English, Japanese and mixed documents in several segments (edits and deletions
after the first commit), and a few hundred generated queries in the portal's query language,
through both engines of SearchIndex.search: the same totals, facet counts, hits in the same
order and the same scores.
"""
from __future__ import annotations

import random
from datetime import date, datetime, timedelta

import pytest
from whoosh.query import Or, Term

from portal.search import query as query_language
from portal.search import vector
from portal.search.index import SearchIndex

EN = ("platform gatekeeper users data provider service obligations compliance app store developers "
      "interoperability advertising transparency ranking marketplace payment consent profiling minors "
      "proceedings commitments fine review webview sandboxing escrow telemetry steering").split()
JA = ("事業者 利用者 情報 規制 対応 措置 透明性 個人情報 削除 違法コンテンツ 手数料 決済 競争 競争促進 "
      "スマートフォン 公正取引委員会 アプリストア 報告 義務 要請").split()
JA_GLUE = ["は", "の", "を", "に", "が", "について", "。"]
KINDS = ("update", "case", "question")
TOPICS = ("dsa", "dma", "appi", "ai", "payments")
CHANNELS = ("1", "2", "3", "4")
SEED = 20260115


def _document(rng: random.Random, i: int, revision: int = 0) -> dict:
    lang = rng.choice(("en", "en", "ja", "mixed"))
    words = rng.randint(8, 60)
    en = " ".join(rng.choice(EN) for _ in range(words))
    ja = "".join(rng.choice(JA) + rng.choice(JA_GLUE) for _ in range(words // 2))
    body = {"en": en, "ja": ja, "mixed": f"{en[:80]} {ja[:60]} {en[80:]}"}[lang]
    title = " ".join(rng.choice(EN) for _ in range(3)) if lang == "en" else rng.choice(JA) + rng.choice(JA)
    kind = rng.choice(KINDS)
    return {
        "key": f"note:{i}", "type": "note", "note_id": str(i), "channel_id": rng.choice(CHANNELS),
        "channel": f"c{rng.randint(1, 4)}", "kind": kind, "status": "", "qstate": "open" if kind == "question" else "",
        "topics": ",".join(rng.sample(TOPICS, rng.randint(0, 2))), "articles": "", "author": f"a{i % 7}",
        "org": "eu-dg", "side": rng.choice(("eu", "jp")), "lang": "ja" if lang == "ja" else "en",
        "title": title, "body": body, "extra": rng.choice(("", "DMA Art. 6", "case AT.40437")),
        "created": datetime(2023, 1, 1) + timedelta(days=rng.randint(0, 1000)),
        "answer_by": None, "stamp": str(revision),
    }


@pytest.fixture(scope="module")
def index():
    """2,500 documents, then three more commits of edits, new documents and deletions: 4 segments."""
    rng = random.Random(SEED)
    ix = SearchIndex(None)
    with ix.writer() as writer:
        for i in range(2500):
            writer.add_document(**_document(rng, i))
    for round_ in range(3):
        with ix.writer(merge=False) as writer:
            for i in rng.sample(range(2500), 150):
                writer.update_document(**_document(rng, i, revision=round_ + 1))
            for i in range(2500 + round_ * 100, 2600 + round_ * 100):
                writer.add_document(**_document(rng, i))
            for i in rng.sample(range(2500), 40):
                writer.delete_by_term("key", f"note:{i}")
    assert len(ix.searcher().subsearchers) == 4
    return ix


def _queries(rng: random.Random) -> list[str]:
    queries = ["platform", "違法コンテンツ", "削除", "競争促進", "スマートフォン", '"app store"', "platform -users",
               "platform OR 決済", "DMA 削除", "-kind:case", "kind:question is:open", "after:2024-06-01 data",
               "before:2023-06-01", "topic:dma topic:dsa", "nosuchword", "個人情報の削除", "webview"]
    for _ in range(220):
        shape = rng.randrange(8)
        word, other = rng.choice(EN), rng.choice(EN)
        if shape == 0:
            queries.append(word)
        elif shape == 1:
            queries.append(f"{word} {other}")
        elif shape == 2:
            queries.append(f"{word} OR {other} OR {rng.choice(JA)}")
        elif shape == 3:
            queries.append(f"{word} -{other}")
        elif shape == 4:
            start = rng.randrange(len(EN) - 3)
            queries.append('"' + " ".join(EN[start:start + rng.randint(2, 3)]) + '"')
        elif shape == 5:
            text = "".join(rng.choice(JA) for _ in range(3))
            start = rng.randrange(len(text) - 1)
            queries.append(text[start:start + rng.randint(2, 8)])
        elif shape == 6:
            queries.append(f"{word} kind:{rng.choice(KINDS)} side:{rng.choice(('eu', 'jp'))}")
        else:
            queries.append(f"{rng.choice(JA)} {word} after:{date(2023, 1, 1) + timedelta(days=rng.randint(0, 900))}")
    return queries


def _answers(results):
    return (results.total, results.facets,
            [(hit.key, hit.score, hit.snippet) for hit in results.hits])


def test_the_array_evaluator_answers_exactly_as_whoosh(index):
    rng = random.Random(SEED + 1)
    schema = index.schema
    visible = Or([Term("type", "article"), Term("channel_id", "1"), Term("channel_id", "3")])
    checked = 0
    for raw in _queries(rng):
        # Every query relaxed and not (the fallback ORs the words); sort, filter and page vary.
        for relaxed in (False, True):
            whoosh_query = query_language.build(schema, query_language.split(raw), today=date(2026, 1, 15),
                                                resolve_article=lambda value: None, relaxed=relaxed)
            sort, filter_query, page = rng.choice(("relevance", "newest")), rng.choice((visible, None)), \
                rng.choice((1, 1, 2))
            kwargs = {"filter_query": filter_query, "sort": sort, "page": page, "per_page": 10}
            fast = index.search(whoosh_query, engine="vector", **kwargs)
            exact = index.search(whoosh_query, engine="whoosh", **kwargs)
            label = f"{raw!r} relaxed={relaxed} sort={sort} page={page} filtered={filter_query is not None}"
            assert (fast.total, fast.facets) == (exact.total, exact.facets), label
            assert [h.key for h in fast.hits] == [h.key for h in exact.hits], label
            assert [h.snippet for h in fast.hits] == [h.snippet for h in exact.hits], label
            for a, b in zip(fast.hits, exact.hits):
                assert a.score == pytest.approx(b.score, rel=1e-6), label
            checked += bool(exact.hits)
    assert checked > 300


def test_an_excluded_word_never_comes_back(index):
    """Whoosh 2.7.4 let the first candidate of each segment through "a -b" (see index.py)."""
    schema = index.schema
    searcher = index.searcher()
    for raw, excluded in (("transparency -sandboxing", "sandbox"), ("platform -users", "user")):
        whoosh_query = query_language.build(schema, query_language.split(raw), today=date(2026, 1, 15),
                                            resolve_article=lambda value: None)
        containing = set(searcher.docs_for_query(Or([Term(field, excluded) for field in ("title", "body", "extra")])))
        for engine in ("vector", "whoosh"):
            results = index.search(whoosh_query, filter_query=None, per_page=5000, engine=engine)
            shown = {searcher.document_number(key=hit.key) for hit in results.hits}
            assert results.total == len(shown) > 0
            assert not shown & containing, engine


def test_queries_it_does_not_reproduce_fall_back_to_whoosh(index):
    schema = index.schema
    query = query_language.build(schema, query_language.split('"platform users"~3'), today=date(2026, 1, 15),
                                 resolve_article=lambda value: None)
    with pytest.raises(vector.Unsupported):
        index.search(query, filter_query=None, engine="vector")
    assert index.search(query, filter_query=None).total == index.search(query, filter_query=None,
                                                                          engine="whoosh").total > 0


def test_the_cache_keeps_to_its_budget(index):
    cache = vector.ArrayCache(budget=200_000)
    query = query_language.build(index.schema, query_language.split("platform data users"),
                                 today=date(2026, 1, 15), resolve_article=lambda value: None)
    segment = vector.Segment(index.searcher().subsearchers[0][0].reader(), cache)
    mask, _ = vector.Evaluator(index.searcher(), segment, scored=True).run(query)
    assert mask.any()
    assert 0 < cache.used <= 200_000
