"""The bilingual analyzer, through a real Whoosh index: Japanese bigrams matched as sequences,
English stemming, NFKC and case folding, and character offsets that highlighting can trust."""
from __future__ import annotations

import pickle
import re

import pytest
from whoosh import highlight, qparser
from whoosh.fields import ID, TEXT, Schema
from whoosh.filedb.filestore import RamStorage
from whoosh.qparser import QueryParser

from portal.search.analysis import (
    BigramHighlighter,
    BilingualTokenizer,
    bilingual_analyzer,
    cjk_runs,
    kanji_number,
    normalise,
)

DOCS = {
    # 違法コンテンツ and 削除 inside a statute-style sentence.
    "ja-content": "特定電気通信役務提供者は、違法コンテンツに関する通知を受けたときは、"
                  "遅滞なく当該情報の削除その他の必要な措置を講ずるよう努めなければならない。",
    # The same characters, apart: every bigram of 違法コンテンツ (違法, 法コ, コンテンツ), 削 … 除.
    "ja-scattered": "違法な情報の流通を抑止するため、コンテンツ事業者は法コンプライアンスの取組を進め、"
                    "不要な記述を削り、対象から除外する。",
    # コン and テンツ separated; スマート・フォン written with a middle dot.
    "ja-split": "資料の見出しでは「コン」と「テンツ」が別の行に表示され、スマート・フォンの表記も揺れている。",
    "ja-competition": "モバイル・エコシステムにおける競争促進のため、スマートフォンのアプリストアに新たな義務を課す。",
    # 競争 and 促進 apart (競争の促進).
    "ja-law-title": "スマートフォンにおいて利用される特定ソフトウェアに係る競争の促進に関する法律",
    "en-dsa": "Providers of hosting services, including online platforms, shall put notice and action "
              "mechanisms in place (Article 16 DSA).",
    # notice and action, but not the phrase; singular platform, plural proceedings.
    "en-proceedings": "The Commission opened proceedings against a very large online platform and took "
                      "action after a notice from a trusted flagger.",
    "en-dma": "Article 6(7) DMA requires GATEKEEPERS to allow interoperability with the hardware and "
              "software features of the operating system.",
    "mixed": "DSA第16条の notice and action の仕組みは、日本の情報流通プラットフォーム対処法による"
             "削除申出の手続と比較できる。",
    "ja-article": "同法第6条第7項の規定により、事業者は相互運用性を確保しなければならない。",
    # Full-width Latin, half-width katakana (ｱﾌﾟﾘ: 4 characters, アプリ after NFKC: 3),
    # ㈱ (1 character, "(株)" after NFKC: 3) and the ligature ﬁ (1 character, "fi": 2).
    "widths": "ＥＵのＤＳＡとＤＭＡは、㈱ｴｰｽのｱﾌﾟﾘを配信するｽﾏｰﾄﾌｫﾝにも影響する。The gatekeeper was ﬁned.",
}


def make_schema(**body_options) -> Schema:
    options = {"phrase": True, "multitoken_query": "phrase", "stored": True} | body_options
    return Schema(id=ID(stored=True, unique=True), body=TEXT(analyzer=bilingual_analyzer(), **options))


def make_index(schema: Schema):
    ix = RamStorage().create_index(schema)
    with ix.writer() as writer:
        for key, body in DOCS.items():
            writer.add_document(id=key, body=body)
    return ix


@pytest.fixture(scope="module")
def ix():
    return make_index(make_schema())


def found(ix, text: str, group=qparser.AndGroup) -> set[str]:
    query = QueryParser("body", ix.schema, group=group).parse(text)
    with ix.searcher() as searcher:
        return {hit["id"] for hit in searcher.search(query, limit=None)}


def marked(ix, text: str, highlighter=BigramHighlighter) -> dict[str, str]:
    """Each hit's whole body with the highlighted parts in [[ ]]."""
    query = QueryParser("body", ix.schema).parse(text)
    with ix.searcher() as searcher:
        results = searcher.search(query, limit=None)
        results.highlighter = highlighter(fragmenter=highlight.WholeFragmenter(),
                                          formatter=highlight.HtmlFormatter(tagname="b", between=""))
        return {hit["id"]: re.sub(r'<b class="match term\d+">(.*?)</b>', r"[[\1]]", hit.highlights("body"))
                for hit in results}


# Japanese: bigrams, matched as a sequence

@pytest.mark.parametrize("group", [qparser.AndGroup, qparser.OrGroup])
@pytest.mark.parametrize(("query", "expected"), [
    ("違法コンテンツ", {"ja-content"}),
    ("削除", {"ja-content", "mixed"}),
    ("競争促進", {"ja-competition"}),
    ("スマートフォン", {"ja-competition", "ja-law-title", "widths"}),
    ("コンテンツ", {"ja-content", "ja-scattered"}),
])
def test_japanese_words_are_found_inside_sentences_and_only_as_a_sequence(ix, query, expected, group):
    assert found(ix, query, group) == expected


def test_a_japanese_query_is_a_phrase_of_consecutive_bigrams(ix):
    query = QueryParser("body", ix.schema).parse("違法コンテンツ")
    assert query.__class__.__name__ == "Phrase"
    assert query.words == ["違法", "法コ", "コン", "ンテ", "テン", "ンツ"]


def test_without_phrase_queries_the_bigrams_would_match_scattered_characters():
    # Why the field needs multitoken_query="phrase": Whoosh's default ANDs the bigrams.
    loose = make_index(make_schema(multitoken_query="default"))
    assert found(loose, "違法コンテンツ") == {"ja-content", "ja-scattered"}


def test_several_japanese_words_and_full_width_spaces(ix):
    assert found(ix, "違法コンテンツ 削除") == {"ja-content"}
    assert found(ix, "違法コンテンツ\u3000削除") == {"ja-content"}
    assert found(ix, "違法コンテンツ OR 競争促進") == {"ja-content", "ja-competition"}


# English: stemming, case folding, phrases

@pytest.mark.parametrize(("query", "expected"), [
    ("platforms", {"en-dsa", "en-proceedings"}),
    ("platform", {"en-dsa", "en-proceedings"}),
    ("proceeding", {"en-proceedings"}),
    ("gatekeepers", {"en-dma", "widths"}),
    ("GateKeeper", {"en-dma", "widths"}),
    ("INTEROPERABLE", {"en-dma"}),
    ("fine", {"widths"}),
])
def test_english_is_stemmed_and_case_folded(ix, query, expected):
    assert found(ix, query) == expected


def test_a_quoted_phrase_matches_only_the_phrase(ix):
    assert found(ix, '"notice and action"') == {"en-dsa", "mixed"}
    assert found(ix, "notice and action") == {"en-dsa", "en-proceedings", "mixed"}
    assert found(ix, "notice-and-action") == {"en-dsa", "mixed"}
    assert found(ix, '"action and notice"') == set()


def test_article_labels_are_searchable(ix):
    assert found(ix, '"6(7)"') == {"en-dma"}
    assert found(ix, '"article 6(7)"') == {"en-dma"}
    assert found(ix, '"article 7(6)"') == set()
    assert found(ix, "16") == {"en-dsa", "mixed"}
    # Japanese citations: 条 and 第 are runs of one character in the query, the edges of
    # longer runs in the text (条の, 同法第, 条第, 項の規定…).
    assert found(ix, "第16条") == {"mixed"}
    assert found(ix, "第１６条") == {"mixed"}
    assert found(ix, "16条") == {"mixed"}
    assert found(ix, "6条") == {"ja-article"}  # not "16条"
    assert found(ix, "第6条第7項") == {"ja-article"}
    assert found(ix, "第７項") == {"ja-article"}
    assert found(ix, "第7条") == set()
    assert found(ix, "第6条 相互運用性") == {"ja-article"}


def test_a_one_character_query_is_found_at_the_edges_of_runs_only():
    ix = RamStorage().create_index(make_schema())
    with ix.writer() as writer:
        writer.add_document(id="end", body="根拠は独占禁止法。")
        writer.add_document(id="alone", body="法・規則の整備")
        writer.add_document(id="start", body="DSA法の施行")
        writer.add_document(id="inside", body="違法コンテンツ")
    assert found(ix, "法") == {"end", "alone", "start"}


# Widths and mixed languages

def test_full_width_and_half_width_forms_match_their_normal_forms(ix):
    assert found(ix, "ＤＳＡ") == {"en-dsa", "mixed", "widths"}
    assert found(ix, "dsa") == {"en-dsa", "mixed", "widths"}
    assert found(ix, "ｽﾏｰﾄﾌｫﾝ") == found(ix, "スマートフォン")
    assert found(ix, "アプリ") == {"ja-competition", "widths"}
    assert found(ix, "ｱﾌﾟﾘ") == {"ja-competition", "widths"}
    assert found(ix, "株") == {"widths"}


def test_mixed_language_notes_are_found_by_either_language(ix):
    assert "mixed" in found(ix, '"notice and action"')
    assert "mixed" in found(ix, "情報流通プラットフォーム対処法")
    assert found(ix, "DSA 仕組み") == {"mixed"}
    assert found(ix, '"dsa第16条"') == {"mixed"}


# Highlighting: offsets in the original text

def test_highlighting_marks_the_japanese_match(ix):
    assert marked(ix, "違法コンテンツ")["ja-content"] == DOCS["ja-content"].replace(
        "違法コンテンツ", "[[違法コンテンツ]]")


def test_highlighting_offsets_survive_nfkc_changing_lengths(ix):
    # Before the match, ㈱ grows (1 -> 3 characters) and ｱﾌﾟﾘ shrinks (4 -> 3).
    assert marked(ix, "スマートフォン")["widths"] == DOCS["widths"].replace("ｽﾏｰﾄﾌｫﾝ", "[[ｽﾏｰﾄﾌｫﾝ]]")
    assert marked(ix, "アプリ")["widths"] == DOCS["widths"].replace("ｱﾌﾟﾘ", "[[ｱﾌﾟﾘ]]")
    assert marked(ix, "fined")["widths"] == DOCS["widths"].replace("ﬁned", "[[ﬁned]]")
    assert marked(ix, "dsa")["widths"] == DOCS["widths"].replace("ＤＳＡ", "[[ＤＳＡ]]")


def test_highlighting_marks_a_japanese_citation(ix):
    assert marked(ix, "第16条")["mixed"] == DOCS["mixed"].replace("第16条", "[[第16条]]")
    assert marked(ix, "第６条第７項")["ja-article"] == DOCS["ja-article"].replace("第6条第7項", "[[第6条第7項]]")
    # Whoosh's own Highlighter splits it: the unmatched edge unigram 条 (of 条第) interrupts.
    assert marked(ix, "第６条第７項", highlight.Highlighter)["ja-article"].startswith("同法[[第6]][[条第7項]]の")


def test_highlighting_matches_next_to_each_other():
    ix = RamStorage().create_index(make_schema())
    with ix.writer() as writer:
        writer.add_document(id="1", body="削除、違法コンテンツ。DSA 第16条 notice and action")
    assert marked(ix, '削除 違法コンテンツ "dsa 第16条" notice') == {
        "1": "[[削除]]、[[違法コンテンツ]]。[[DSA]] [[第16条]] [[notice]] and action"}


def test_highlighting_marks_the_english_match(ix):
    assert marked(ix, "platforms")["en-proceedings"] == DOCS["en-proceedings"].replace(
        "platform", "[[platform]]")


# The analyzer itself

def tokens(analyzer, text, **options):
    return [(t.text, t.pos, text[t.startchar:t.endchar])
            for t in analyzer(text, positions=True, chars=True, **options)]


def test_tokens_positions_and_offsets_of_a_query():
    assert tokens(bilingual_analyzer(), "DSAの違法コンテンツ, Article 6(7) platforms", mode="query") == [
        ("dsa", 0, "DSA"),
        ("の違", 1, "の違"), ("違法", 2, "違法"), ("法コ", 3, "法コ"), ("コン", 4, "コン"),
        ("ンテ", 5, "ンテ"), ("テン", 6, "テン"), ("ンツ", 7, "ンツ"),
        ("articl", 8, "Article"), ("6", 9, "6"), ("7", 10, "7"), ("platform", 11, "platforms"),
    ]


def test_indexing_adds_the_first_and_last_characters_of_runs_at_the_same_positions():
    assert tokens(bilingual_analyzer(), "第16条の規定", mode="index") == [
        ("第", 0, "第"), ("16", 1, "16"),
        ("条", 2, "条"), ("条の", 2, "条の"), ("の規", 3, "の規"), ("規定", 4, "規定"), ("定", 4, "定"),
    ]
    # Whoosh's default mode (""), as used by process_text(), indexes too.
    assert tokens(bilingual_analyzer(), "第16条の規定") == tokens(bilingual_analyzer(), "第16条の規定", mode="index")
    query = tokens(bilingual_analyzer(), "第16条の規定", mode="query")
    assert query == [("第", 0, "第"), ("16", 1, "16"), ("条の", 2, "条の"), ("の規", 3, "の規"), ("規定", 4, "規定")]


def test_a_one_character_run_is_a_unigram_and_marks_belong_to_runs():
    assert tokens(bilingual_analyzer(), "法・規則々、ゞ", mode="query") == [
        ("法", 0, "法"), ("規則", 1, "規則"), ("則々", 2, "則々"), ("ゞ", 3, "ゞ")]
    assert tokens(bilingual_analyzer(), "法・規則々、ゞ", mode="index") == [
        ("法", 0, "法"), ("規", 1, "規"), ("規則", 1, "規則"), ("則々", 2, "則々"), ("々", 2, "々"), ("ゞ", 3, "ゞ")]


def test_offsets_point_at_the_original_characters():
    texts = ["㈱ｴｰｽのｱﾌﾟﾘ", "ＡＢＣ１２３ａｂｃ", "Straße İstanbul ﬁnal", "ｶﾞｷﾞｸﾞ ｶﾞ", "e\u0301te\u0301 ①②",
             "第１条（目的）", "㍿と㌔", "x\u00ady\u200bz ḁ\u0301"]
    for text in texts:
        for token in BilingualTokenizer()(text, chars=True):  # unstemmed, so spans compare
            # Normalising the original span gives back the token (or, for a cluster
            # that expands, a text that contains it).
            assert token.text in normalise(text[token.startchar:token.endchar])[0], (text, token)


def test_start_pos_and_start_char_are_honoured():
    analyzer = bilingual_analyzer()
    [token] = analyzer("法", positions=True, chars=True, start_pos=5, start_char=10)
    assert (token.pos, token.startchar, token.endchar) == (5, 10, 11)
    texts = [(t.text, t.pos, t.startchar, t.endchar)
             for t in analyzer("ｱﾌﾟﾘ", positions=True, chars=True, start_pos=2, start_char=7)]
    assert texts == [("ア", 2, 7, 8), ("アプ", 2, 7, 10), ("プリ", 3, 8, 11), ("リ", 3, 10, 11)]


def test_query_and_index_modes_differ_only_by_the_edge_unigrams():
    text = "ＤＳＡと違法コンテンツ: notices and actions, ｽﾏｰﾄﾌｫﾝ"
    query = tokens(bilingual_analyzer(), text, mode="query")
    index = tokens(bilingual_analyzer(), text, mode="index")
    assert [token for token in index if token not in query] == [("と", 1, "と"), ("ツ", 7, "ツ"),
                                                                ("ス", 11, "ｽ"), ("ン", 16, "ﾝ")]
    assert [token for token in index if token in query] == query


def test_untokenised_values_are_normalised_but_not_stemmed():
    assert [t.text for t in bilingual_analyzer()("Platforms*", tokenize=False)] == ["platforms*"]
    assert [t.text for t in bilingual_analyzer()("ＤＳＡ", tokenize=False)] == ["dsa"]


def test_cjk_runs():
    assert cjk_runs("ＤＳＡと違法コンテンツ、ｽﾏｰﾄﾌｫﾝ・アプリ and DMA") == ["と違法コンテンツ", "スマートフォン", "アプリ"]
    assert cjk_runs("notice and action") == []


def test_the_schema_pickles_and_the_index_reopens():
    schema = make_schema()
    again = pickle.loads(pickle.dumps(schema))
    assert again == schema
    storage = RamStorage()
    ix = storage.create_index(schema)
    with ix.writer() as writer:
        writer.add_document(id="1", body=DOCS["ja-content"])
    reopened = storage.open_index()
    assert found(reopened, "違法コンテンツ") == {"1"}
    assert found(reopened, "notice") == set()


# Kanji numerals in numbers

@pytest.mark.parametrize(("numeral", "value"), [
    ("一", 1), ("十", 10), ("二十七", 27), ("百", 100), ("百八十五", 185), ("千二百三十四", 1234),
    ("二〇一三", 2013), ("一万二千", 12000), ("三千万", 30_000_000),
])
def test_kanji_numbers(numeral, value):
    assert kanji_number(numeral) == value


def test_kanji_numerals_in_numbers_index_and_query_as_digits():
    assert tokens(bilingual_analyzer(), "第二十七条　（第三者提供の制限）", mode="query")[:4] == [
        ("第", 0, "第"), ("27", 1, "二十七"), ("条", 2, "条"), ("第", 3, "第")]
    assert [t for t, _, _ in tokens(bilingual_analyzer(), "第二十九条の四", mode="query")] == ["第", "29", "条の", "4"]
    assert [t for t, _, _ in tokens(bilingual_analyzer(), "六十日以内", mode="query")] == ["60", "日以", "以内"]
    assert [t for t, _, _ in tokens(bilingual_analyzer(), "平成十五年法律第五十七号", mode="query")] == [
        "平成", "15", "年法", "法律", "律第", "57", "号"]
    # Not numbers: the characters stay in their words.
    assert [t for t, _, _ in tokens(bilingual_analyzer(), "一般に統一し十分な", mode="query")] == [
        "一般", "般に", "に統", "統一", "一し", "し十", "十分", "分な"]


def test_a_statute_heading_in_kanji_numerals_is_found_by_digits():
    ix = RamStorage().create_index(make_schema())
    with ix.writer() as writer:
        writer.add_document(id="heading", body="個人情報の保護に関する法律 第二十七条　（提供の制限）")
        writer.add_document(id="branch", body="第二十九条の四　特定個人情報の漏えい等に関する報告等")
        writer.add_document(id="days", body="受領した日から起算して、六十日の期間内において")
        writer.add_document(id="other", body="第二十条及び第七条の規定")
    assert found(ix, "第27条") == found(ix, "第２７条") == found(ix, "第二十七条") == {"heading"}
    assert found(ix, "27条") == {"heading"}
    assert found(ix, "第29条の4") == {"branch"}
    assert found(ix, "60日") == {"days"}
    assert found(ix, "第7条") == {"other"}  # not 第27条
    assert marked(ix, "第27条")["heading"] == "個人情報の保護に関する法律 [[第二十七条]]　（提供の制限）"
