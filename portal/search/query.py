"""The portal's query language: words, "phrases", OR, -word and field filters such as kind:case.

Parsing never fails: what cannot be understood is searched as text or dropped, with a notice
saying so, so a malformed query still answers.
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from whoosh import qparser
from whoosh.query import And, DateRange, Every, Not, NullQuery, Or, Query, Term

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
        notices.append(f"Only the first {MAX_QUERY_CHARS} characters of the query were used.")
    return text.strip(), notices


def split(raw: str) -> ParsedQuery:
    """Separate known field filters from the free text."""
    text, notices = clean(raw)
    parsed = ParsedQuery(text="", notices=notices)

    def take(match: re.Match) -> str:
        negate, name, quoted, bare = match.group(1), match.group(2).lower(), match.group(3), match.group(4)
        value = (quoted if quoted is not None else bare or "").strip()
        if name not in FILTERS:
            parsed.notices.append(f"There is no filter called {name}:; it was searched as text.")
            return f"{name} {value}"
        if not value:
            return " "
        target = parsed.excluded if negate else parsed.filters
        target.setdefault(name, []).append(value)
        return " "

    parsed.text = " ".join(FILTER_TOKEN.sub(take, text).split())
    return parsed


def text_query(schema, text: str) -> Query | None:
    """The free text as a Whoosh query over title, body and extra; None when there is none."""
    if not text.strip():
        return None
    parser = qparser.MultifieldParser(TEXT_FIELDS, schema, group=qparser.AndGroup)
    # No wildcards, ranges or field syntax: officials type words, and a stray * must not expand
    # over the whole lexicon. -word and +word work; AND/OR/NOT work as operators.
    for plugin in (qparser.WildcardPlugin, qparser.RangePlugin, qparser.FieldsPlugin, qparser.BoostPlugin):
        parser.remove_plugin_class(plugin)
    # Only a sign at the start of a word: "anti-steering" is one term, not "anti -steering".
    parser.add_plugin(qparser.PlusMinusPlugin(plusexpr=r"(?<![^\s(])\+", minusexpr=r"(?<![^\s(])-"))
    try:
        query = parser.parse(text)
    except Exception:  # the parser is tolerant, but a query must answer whatever was typed
        query = parser.parse(re.sub(r'["()+\-]', " ", text))
    if query is NullQuery:
        return None
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
            return None, f"kind: is update, case or question (not {value!r})."
        return Term("kind", lowered), None
    if name == "topic":
        return Term("topics", lowered), None
    if name == "article":
        label = resolve_article(value)
        if label is None:
            return None, f"No article {value!r} in the regulation index; write e.g. article:\"DSA Art. 34\"."
        return Term("articles", label), None
    if name == "author":
        return Term("author", lowered), None
    if name == "org":
        return Term("org", lowered), None
    if name == "side":
        if lowered not in ("eu", "jp"):
            return None, "side: is eu or jp."
        return Term("side", lowered), None
    if name == "lang":
        if lowered not in ("en", "ja"):
            return None, "lang: is en or ja."
        return Term("lang", lowered), None
    if name == "status":
        return Or([Term("status", lowered), Term("qstate", lowered)]), None
    if name == "is":
        if lowered in ("open", "answered", "declined"):
            return Term("qstate", lowered), None
        if lowered == "overdue":
            yesterday = datetime.combine(today - timedelta(days=1), datetime.max.time())
            return And([Term("qstate", "open"), DateRange("answer_by", None, yesterday)]), None
        return None, "is: is open, answered, declined or overdue."
    if name in ("before", "after"):
        day = parse_day(value)
        if day is None:
            return None, f"{name}: needs a date as YYYY-MM-DD (not {value!r})."
        if name == "before":
            return DateRange("created", None, datetime.combine(day, datetime.min.time()), endexcl=True), None
        return DateRange("created", datetime.combine(day + timedelta(days=1), datetime.min.time()), None), None
    return None, None


def build(schema, parsed: ParsedQuery, *, today: date, resolve_article, also: Query | None = None) -> Query:
    """The whole query: free text AND `also` AND every filter (values of one filter OR-ed), minus exclusions."""
    parts: list[Query] = [also] if also is not None else []
    text = text_query(schema, parsed.text)
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
