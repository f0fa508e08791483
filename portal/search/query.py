"""The portal's query language: words, "phrases", OR, -word and field filters such as kind:case.

Parsing never fails: what cannot be understood is searched as text or dropped, with a notice
saying so, so a malformed query still answers.
"""
from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from flask_babel import lazy_gettext as _l
from whoosh import qparser
from whoosh.query import And, AndNot, DateRange, Every, Not, NullQuery, Or, Query, Term

from portal.search.analysis import CJK

MAX_QUERY_CHARS = 500
TEXT_FIELDS = ("title", "body", "extra")
FILTERS = ("channel", "kind", "topic", "article", "author", "org", "side", "lang", "status", "is",
           "before", "after")
# name:value or name:"quoted value"; anything else of the form x:y stays text.
FILTER_TOKEN = re.compile(r'(?<![\w"])(-?)([a-z]+):(?:"([^"]*)"?|(\S+))', re.IGNORECASE)
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


@dataclass
class ParsedQuery:
    text: str  # the free-text part, as given to the Whoosh parser
    filters: dict[str, list[str]] = field(default_factory=dict)
    excluded: dict[str, list[str]] = field(default_factory=dict)
    notices: list[str] = field(default_factory=list)


def clean(raw: str) -> tuple[str, list[str]]:
    """NFKC, no control characters, bounded length."""
    notices = []
    text = CONTROL.sub(" ", unicodedata.normalize("NFKC", raw or ""))
    if len(text) > MAX_QUERY_CHARS:
        text = text[:MAX_QUERY_CHARS]
        notices.append(_l("Only the first %(n)s characters of the query were used.", n=MAX_QUERY_CHARS))
    return text.strip(), notices


def split(raw: str) -> ParsedQuery:
    """Separate known field filters from the free text."""
    text, notices = clean(raw)
    parsed = ParsedQuery(text="", notices=notices)

    def take(match: re.Match) -> str:
        negate, name, quoted, bare = match.group(1), match.group(2).lower(), match.group(3), match.group(4)
        value = (quoted if quoted is not None else bare or "").strip()
        if name not in FILTERS:
            parsed.notices.append(_l("There is no filter called %(name)s:; it was searched as text.", name=name))
            return f"{name} {value}"
        if not value:
            return " "
        target = parsed.excluded if negate else parsed.filters
        target.setdefault(name, []).append(value)
        return " "

    parsed.text = " ".join(FILTER_TOKEN.sub(take, text).split())
    return parsed


# Japanese query text -----------------------------------------------------------------------
#
# Japanese is written without spaces, and the analyzer matches a run of Japanese characters in a
# query as a phrase. A run typed as a whole question, 個人情報の定義 or 保有個人データの開示請求,
# would then only find that exact string. So, outside quotes, a run is cut at its hiragana (the
# particles and endings: の, を, にある, する …) where they separate pieces of at least two
# characters, and the hiragana are dropped: 個人情報の定義 -> 個人情報 定義, 真正な成立の推定 ->
# 真正 成立 推定, 個人データの漏えい等の報告 -> 個人データ 漏えい等 報告 (before 漏えい, one
# kanji and its okurigana, only a particle cuts). 取り扱う, 法の適用 or できる stay whole: a
# piece of one character would only match at the edges of runs. A citation 電気通信事業法第4条
# becomes 電気通信事業法 第4条: a statute names itself in its title and the article in its
# heading, not as one string. A short name of a law (個人情報保護法) also finds the formal title
# ("個人情報の保護に関する法律") and the other way round, from content/law_names.json.
# Quoted text and words marked with + or - are left exactly as typed.

HIRAGANA = "\u3041-\u309f"
PARTICLES = frozenset(["の", "を", "が", "は", "に", "へ", "と", "で", "や", "も", "から", "より", "まで"])
_KANA_SPLIT = re.compile(f"([{HIRAGANA}]+)")
_KANA = re.compile(f"[{HIRAGANA}]+")
_RUN = re.compile(f"[{CJK}]+")
_ARTICLE = re.compile(
    f"(?<=[{CJK}])(?<![条項号第])(?=第(?:[0-9]+|[〇一二三四五六七八九十百千]+)[条項号章節款編])"
)


def split_run(run: str) -> list[str]:
    """A run of Japanese characters cut at its hiragana (see above); [run] when it has no cut."""
    parts = [part for part in _KANA_SPLIT.split(run) if part]
    pieces: list[str] = []
    current = ""
    for i, part in enumerate(parts):
        if _KANA.fullmatch(part):
            following = parts[i + 1] if i + 1 < len(parts) else ""
            rest = "".join(parts[i + 1:])
            # A separator between pieces, or an ending after one (取得する). Before a piece that
            # starts with one kanji and its okurigana (漏えい等), only a particle separates.
            if len(current) >= 2 and (not following or len(following) >= 2
                                      or (part in PARTICLES and len(rest) >= 2)):
                pieces.append(current)
                current = ""
                continue
            if not current and len(following) >= 2:
                continue  # leading hiragana before a piece (この法律)
        current += part
    if current:
        pieces.append(current)
    return pieces or [run]


@functools.lru_cache(maxsize=8)
def _law_pattern(names: frozenset[str]) -> re.Pattern | None:
    """Every name of a law, longest first, so that a formal title is matched as a whole."""
    ordered = sorted(names, key=len, reverse=True)
    return re.compile("|".join(map(re.escape, ordered))) if ordered else None


def _rewrite_word(word: str, laws: re.Pattern | None, law_names: Mapping[str, Sequence[str]]) -> str:
    if word[:1] in "+-" or not _RUN.search(word):
        return word
    pieces: list[str] = []
    done = 0
    for match in (laws.finditer(word) if laws else ()):
        pieces.append(word[done:match.start()])
        names = law_names[match.group()]
        pieces.append(" (" + " OR ".join(f'"{name}"' for name in names) + ") ")
        done = match.end()
    pieces.append(word[done:])
    out = []
    for piece in pieces:
        if piece.startswith(" "):
            out.append(piece)
            continue
        piece = _ARTICLE.sub(" ", piece)

        def cut(match: re.Match) -> str:  # spaces only between pieces: 第 stays with 4条
            parts = split_run(match.group())
            return parts[0] if len(parts) == 1 else " " + " ".join(parts) + " "

        out.append(_RUN.sub(cut, piece))
    rewritten = " ".join("".join(out).split())
    return f"({rewritten})" if rewritten != word else word


def rewrite_japanese(text: str, law_names: Mapping[str, Sequence[str]] | None = None) -> str:
    """The free text with its Japanese runs cut and the names of laws expanded (see above).

    law_names maps each name of a law to all its names.
    """
    law_names = law_names or {}
    laws = _law_pattern(frozenset(law_names))
    segments = text.split('"')
    for i in range(0, len(segments), 2):  # outside quotes (an unclosed quote runs to the end)
        if i == len(segments) - 1 and len(segments) % 2 == 0:
            break
        segments[i] = "".join(_rewrite_word(word, laws, law_names) for word in re.split(r"(\s+)", segments[i]))
    return '"'.join(segments)


# Ranking ---------------------------------------------------------------------------------------
#
# Several words are a conjunction, but a soft one. Officials search with the words of their
# question, and the text of the law often has only some of them (it says "electronic mail", the
# query "email"; it has 所掌事務 under 委員会, not 個人情報保護委員会). So, sorted by relevance,
# a document with only some of the words is found too, and a document with all of them scores
# twice: the words' BM25F scores once as a conjunction and once as a disjunction. That ranks it
# above documents with some of the words in all but rare cases, without the cliff of a strict
# tier (a document with four of five words in its title can still beat one that mentions all
# five in passing). Sorted by newest, only documents with all the words are listed.


def _parser(schema):
    parser = qparser.MultifieldParser(TEXT_FIELDS, schema, group=qparser.AndGroup)
    # No wildcards, ranges or field syntax: officials type words, and a stray * must not expand
    # over the whole lexicon. -word and +word work; AND/OR/NOT work as operators.
    for plugin in (qparser.WildcardPlugin, qparser.RangePlugin, qparser.FieldsPlugin, qparser.BoostPlugin):
        parser.remove_plugin_class(plugin)
    # Only a sign at the start of a word: "anti-steering" is one term, not "anti -steering".
    parser.add_plugin(qparser.PlusMinusPlugin(plusexpr=r"(?<![^\s(])\+", minusexpr=r"(?<![^\s(])-"))
    return parser


def _parse(parser, text: str) -> Query | None:
    try:
        query = parser.parse(text)
    except Exception:  # the parser is tolerant, but a query must answer whatever was typed
        query = parser.parse(re.sub(r'["()+\-]', " ", text))
    return None if query is NullQuery else query


def _without_exclusions(query: Query) -> tuple[Query, list[Query]]:
    excluded: list[Query] = []
    while isinstance(query, AndNot):
        excluded.append(query.b)
        query = query.a
    return query, excluded


def text_query(schema, text: str, *, law_names: Mapping[str, Sequence[str]] | None = None,
               relaxed: bool = False) -> Query | None:
    """The free text as a Whoosh query over title, body and extra; None when there is none.

    relaxed: documents with some of the words match too, below those with all of them (see
    "Ranking"); otherwise every word (outside OR groups) is required.
    """
    if not text.strip():
        return None
    text = rewrite_japanese(text, law_names)
    parser = _parser(schema)
    strict = _parse(parser, text)
    if strict is None or not relaxed:
        return strict
    required, excluded = _without_exclusions(strict)
    words = list(required.subqueries) if type(required) is And else [required]
    excluded += [word.query for word in words if isinstance(word, Not)]  # a NOT b
    words = [word for word in words if not isinstance(word, Not)]
    if len(words) < 2:
        return strict  # one word, or +word syntax (AndMaybe): nothing to relax
    query: Query = Or([required, Or(words)])
    for exclusion in excluded:
        query = AndNot(query, exclusion)
    return query


def parse_day(value: str) -> date | None:
    try:
        return date.fromisoformat(value)
    except ValueError:
        return None


def filter_terms(name: str, value: str, *, today: date, resolve_article) -> tuple[Query | None, str | None]:
    """One filter as a Whoosh query, or a notice explaining why it was ignored."""
    value = value.strip()
    lowered = value.lower()
    if name == "channel":
        return Term("channel", lowered), None
    if name == "kind":
        if lowered not in ("update", "case", "question"):
            return None, _l("kind: is update, case or question (not '%(value)s').", value=value)
        return Term("kind", lowered), None
    if name == "topic":
        return Term("topics", lowered), None
    if name == "article":
        label = resolve_article(value)
        if label is None:
            return None, _l("No article '%(value)s' in the regulation index; write e.g. article:\"DSA Art. 34\".",
                             value=value)
        return Term("articles", label), None
    if name == "author":
        return Term("author", lowered), None
    if name == "org":
        return Term("org", lowered), None
    if name == "side":
        if lowered not in ("eu", "jp"):
            return None, _l("side: is eu or jp.")
        return Term("side", lowered), None
    if name == "lang":
        if lowered not in ("en", "ja"):
            return None, _l("lang: is en or ja.")
        return Term("lang", lowered), None
    if name == "status":
        return Or([Term("status", lowered), Term("qstate", lowered)]), None
    if name == "is":
        if lowered in ("open", "answered", "declined"):
            return Term("qstate", lowered), None
        if lowered == "overdue":
            yesterday = datetime.combine(today - timedelta(days=1), datetime.max.time())
            return And([Term("qstate", "open"), DateRange("answer_by", None, yesterday)]), None
        return None, _l("is: is open, answered, declined or overdue.")
    if name in ("before", "after"):
        day = parse_day(value)
        if day is None:
            return None, _l("%(name)s: needs a date as YYYY-MM-DD (not '%(value)s').", name=name, value=value)
        if name == "before":
            return DateRange("created", None, datetime.combine(day, datetime.min.time()), endexcl=True), None
        return DateRange("created", datetime.combine(day + timedelta(days=1), datetime.min.time()), None), None
    return None, None


def build(schema, parsed: ParsedQuery, *, today: date, resolve_article, also: Query | None = None,
          law_names: Mapping[str, Sequence[str]] | None = None, relaxed: bool = False) -> Query:
    """The whole query: free text AND `also` AND every filter (values of one filter OR-ed), minus exclusions."""
    parts: list[Query] = [also] if also is not None else []
    text = text_query(schema, parsed.text, law_names=law_names, relaxed=relaxed)
    if text is not None:
        parts.append(text)
    for name, values in parsed.filters.items():
        alternatives = []
        for value in values:
            query, notice = filter_terms(name, value, today=today, resolve_article=resolve_article)
            if notice:
                parsed.notices.append(notice)
            if query is not None:
                alternatives.append(query)
        if alternatives:
            parts.append(Or(alternatives) if len(alternatives) > 1 else alternatives[0])
    for name, values in parsed.excluded.items():
        for value in values:
            query, notice = filter_terms(name, value, today=today, resolve_article=resolve_article)
            if notice:
                parsed.notices.append(notice)
            if query is not None:
                parts.append(Not(query))
    if not parts or all(isinstance(part, Not) for part in parts):
        parts.insert(0, Every())
    return And(parts) if len(parts) > 1 else parts[0]
