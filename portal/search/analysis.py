"""Bilingual (English / Japanese) text analysis for the Whoosh search index.

One analyzer serves both languages, because notes freely mix them ("DSA第16条の
notice and action の仕組み"):

* Text is NFKC-normalised and case-folded, so full-width ＡＢＣ/１２３ and half-width
  ｶﾀｶﾅ index and query as ABC/123 and カタカナ, and "GATEKEEPER" as "gatekeeper".
* Runs of letters and digits outside the CJK blocks (Latin with diacritics, Greek, …)
  become words, which go through the English Porter2 stemmer: "platforms" finds
  "platform", "proceeding" finds "proceedings". Anything else separates words, so
  "6(7)" gives "6" and "7" and "notice-and-action" gives three words.
* Runs of Han, Hiragana and Katakana (with ー, 々, ゝゞ, ヽヾ) become overlapping
  character bigrams at consecutive positions: 違法コンテンツ -> 違法 法コ コン ンテ テン ンツ.
  A one-character run becomes one unigram. Japanese has no spaces, so this is what
  lets a word be found inside a longer sentence; and because the positions are
  consecutive, a Phrase query over the bigrams of a query run matches exactly that
  sequence of characters. That needs the field to be declared
  ``TEXT(analyzer=bilingual_analyzer(), phrase=True, multitoken_query="phrase")``:
  with Whoosh's default (multitoken_query="default" -> AND) 違法コンテンツ would also
  match a note that has 違法, 法コンプライアンス and コンテンツ in different places.
* Kanji numerals that are part of a number are written in Arabic digits, in the text and
  in queries alike: 第二十七条 indexes as 第27条, so a query 第27条 (or 第２７条) finds the
  statute's heading, and 六十日 as 60日. Only where the characters must be a number: after
  第, before a counter (条 項 号 章 節 款 編 年 月 日 円 人 回 箇月 か月 ヶ月) or as the branch
  number of an article (第二十九条の四 -> 第29条の4). 一般, 統一 or 十分 are left alone.
* When indexing (any mode but "query"), the first and last characters of a longer
  run are also emitted as unigrams, at the positions of the first and last bigrams,
  so that a query whose run is one character next to digits or Latin letters, such
  as 第16条 or 第6条第7項, finds 第16条の規定 (where 条 begins the run 条の規定). A
  one-character query is therefore found where the character begins or ends a run
  (next to punctuation, a space, digits or Latin letters), not inside one: 法 finds
  "独占禁止法。", 法・規則 and DSA法の施行 but not 違法コンテンツ. (Unigrams for every
  character would fix that, but they double the postings and, interleaved with the
  bigrams, break Whoosh's own highlighter, which merges only matched tokens that are
  consecutive in the stream.)

Character offsets (Token.startchar/endchar, used by whoosh.highlight) always refer to
the ORIGINAL text, although NFKC changes lengths (ｱﾌﾟﾘ is 4 characters and アプリ 3;
㈱ becomes "(株)", ﬁ becomes "fi"): text is normalised per grapheme-like cluster (a
character and the combining marks after it) with a map from each normalised character
back to the span of its cluster in the original.

No stop words: Whoosh's StopFilter also drops tokens shorter than two characters (the
"6" and "7" of "Article 6(7)", the "a" of "Article 6(1)(a)"), and with stop words
removed a quoted "notice and action" would become the phrase "notice action", which
also matches "notice of action" and "notice, action". The corpus is small (notes,
not the web), so the cost of indexing "the" and "and" is negligible; the scorer
(BM25F) already gives such frequent words next to no weight.

Highlighting: prefer BigramHighlighter (results.highlighter = BigramHighlighter(...)) to
Whoosh's Highlighter, which splits a match that spans several runs into several marks
(同法[第6][条第7項]) and can drop part of a match that follows another.

Everything here is a module-level class or function, so Whoosh can pickle the schema.
"""
from __future__ import annotations

import bisect
import functools
import re
import unicodedata

from whoosh.analysis import StemFilter, Token, Tokenizer
from whoosh.highlight import Highlighter
from whoosh.lang.porter2 import stem as porter2_stem

__all__ = [
    "CJK",
    "BigramHighlighter",
    "BilingualTokenizer",
    "LatinStemFilter",
    "arabic_numerals",
    "bilingual_analyzer",
    "cjk_runs",
    "kanji_number",
    "normalise",
]

# Characters written without spaces between words, as they are after NFKC (so the
# half-width and full-width forms are not listed: they have become these already).
# Not included: ・ (U+30FB, a separator, as in プラットフォーム・サービス), ゠ (U+30A0),
# and the combining voiced sound marks U+3099/U+309A, which NFKC composes into the
# preceding kana (ｶﾞ -> ガ); any left over on their own are noise.
_CJK = (
    "\u3005-\u3007"  # 々 〆 〇
    "\u303b"  # 〻
    "\u3041-\u3096"  # Hiragana
    "\u309d-\u309f"  # ゝ ゞ ゟ
    "\u30a1-\u30fa"  # Katakana
    "\u30fc-\u30ff"  # ー ヽ ヾ ヿ
    "\u31f0-\u31ff"  # small Katakana for Ainu
    "\u3400-\u4dbf"  # CJK Extension A
    "\u4e00-\u9fff"  # CJK Unified Ideographs
    "\uf900-\ufaff"  # CJK Compatibility Ideographs that NFKC leaves alone
    "\U0001b000-\U0001b16f"  # Kana Supplement / Extended
    "\U00020000-\U0003134f"  # CJK Extensions B to G
)


# Characters that combine with the one before them (or may, under NFKC): combining
# diacritics, the kana voiced sound marks (also their half-width forms ﾞﾟ, which NFKC
# turns into combining ones), variation selectors, Hangul medial and final jamo.
_MARKS = (
    "\u0300-\u036f\u0483-\u0489\u0591-\u05bd\u0610-\u061a\u064b-\u065f"
    "\u0900-\u0903\u093a-\u094f\u0951-\u0957\u0962\u0963"
    "\u1160-\u11ff\u1ab0-\u1aff\u1dc0-\u1dff\u200c\u200d\u20d0-\u20ff"
    "\u302a-\u302f\u3099\u309a\ufe00-\ufe0f\ufe20-\ufe2f\uff9e\uff9f"
    "\U000e0100-\U000e01ef"
)
_MARK = re.compile(f"[{_MARKS}]")

# A token is a CJK run (group 1) or a word: a run of characters that str.isalnum()
# accepts (Python's \w without "_"), other than CJK ones, with any combining marks NFKC
# could not compose into them (group 2; "İ" folds to "i" + U+0307, for instance).
_WORD_CHAR = f"[^\\W_{_CJK}]"
_TOKEN = re.compile(f"([{_CJK}]+)|({_WORD_CHAR}+(?:[{_MARKS}]+{_WORD_CHAR}*)*)")
_CJK_RUN = re.compile(f"[{_CJK}]+")
CJK = _CJK  # the character class (without brackets), for the query language


def _is_safe(char: str) -> bool:
    """Whether a character normalises to itself alone and case-folds to one character.

    A run of such characters, not followed by a combining mark, is normalised by
    str.casefold() alone, character for character, so its offsets map one to one.
    """
    if unicodedata.category(char)[0] in "MC" and char not in "\t\n\r":
        return False
    if unicodedata.combining(char) or _MARK.match(char):
        return False
    if unicodedata.normalize("NFKC", char) != char:
        return False
    folded = char.casefold()
    return (len(folded) == 1 and unicodedata.normalize("NFKC", folded) == folded
            and unicodedata.category(folded)[0] != "M")


@functools.lru_cache(maxsize=1)
def _clusters() -> re.Pattern:
    """The pattern that cuts text into safe runs (group 1) and single clusters.

    Built on first use, not at import: scanning the Basic Multilingual Plane takes
    some 50 ms. Characters beyond it (other than CJK ideographs, which are all safe)
    are simply treated as clusters of their own, which is correct, only slower.
    """
    ranges: list[tuple[int, int]] = []
    for code in range(0x10000):
        if 0xD800 <= code <= 0xDFFF:
            continue
        if _is_safe(chr(code)):
            if ranges and ranges[-1][1] == code - 1:
                ranges[-1] = (ranges[-1][0], code)
            else:
                ranges.append((code, code))
    ranges.append((0x20000, 0x3134F))
    safe = "".join(re.escape(chr(a)) if a == b else f"{re.escape(chr(a))}-{re.escape(chr(b))}"
                   for a, b in ranges)
    return re.compile(f"([{safe}]+)(?![{_MARKS}])|.[{_MARKS}]*", re.DOTALL)


@functools.lru_cache(maxsize=8192)
def _fold_cluster(cluster: str) -> str:
    # NFKC, then case folding, then NFKC again: casefold() can undo composition
    # (for instance U+0130 İ folds to "i" + U+0307).
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", cluster).casefold())


def normalise(text: str) -> tuple[str, list[int] | None, list[int] | None]:
    """NFKC-normalise and case-fold `text`, keeping track of the original offsets.

    Returns (folded, starts, ends): the normalised text, and for each of its
    characters the start and end offset in `text` of the characters it came from;
    starts and ends are None when they would be the identity (the common case for
    English: NFKC left the text alone and case folding kept its length).
    """
    folded = text.casefold()
    if (len(folded) == len(text) and unicodedata.is_normalized("NFKC", text)
            and unicodedata.is_normalized("NFKC", folded)):
        return folded, None, None
    pieces: list[str] = []
    starts: list[int] = []
    ends: list[int] = []
    for match in _clusters().finditer(text):
        start, end = match.span()
        if match.group(1) is not None:
            pieces.append(match.group(1).casefold())
            starts.extend(range(start, end))
            ends.extend(range(start + 1, end + 1))
        else:
            piece = _fold_cluster(match.group())
            pieces.append(piece)
            starts.extend([start] * len(piece))
            ends.extend([end] * len(piece))
    return "".join(pieces), starts, ends


_DIGITS = {"〇": 0, "一": 1, "二": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}
_UNITS = {"十": 10, "百": 100, "千": 1000}
_MYRIADS = {"万": 10_000, "億": 100_000_000}
_NUMERAL_CHARS = "".join([*_DIGITS, *_UNITS, *_MYRIADS])
# A run of kanji numerals where it can only be a number (see the module docstring). The
# lookbehinds are fixed-width: 第 before, or 条/項/号 + の before a branch number.
_NUMERAL = re.compile(
    f"(?:(?<=第)|(?<=[条項号]の))[{_NUMERAL_CHARS}]+"
    f"|[{_NUMERAL_CHARS}]+(?=[条項号章節款編年月日円人回]|箇月|か月|ヶ月)"
)
_HAS_NUMERAL = re.compile(f"[{_NUMERAL_CHARS}]")


def kanji_number(numeral: str) -> int:
    """The value of a kanji numeral: 二十七 -> 27, 百八十五 -> 185, 二〇一三 -> 2013, 三千万 -> 30000000."""
    if not any(char in _UNITS or char in _MYRIADS for char in numeral):
        return int("".join(str(_DIGITS[char]) for char in numeral))  # positional: 二〇一三
    total = section = current = 0
    for char in numeral:
        if char in _DIGITS:
            current = current * 10 + _DIGITS[char]
        elif char in _UNITS:
            section += (current or 1) * _UNITS[char]
            current = 0
        else:
            total += (section + current or 1) * _MYRIADS[char]
            section = current = 0
    return total + section + current


def arabic_numerals(folded: str, starts: list[int] | None, ends: list[int] | None
                    ) -> tuple[str, list[int] | None, list[int] | None]:
    """Normalised text (as normalise() returns it) with kanji numerals in numbers as digits.

    The offsets follow: every digit of 27 points at the whole of 二十七 in the original.
    """
    matches = list(_NUMERAL.finditer(folded)) if _HAS_NUMERAL.search(folded) else []
    if not matches:
        return folded, starts, ends
    if starts is None:
        starts = list(range(len(folded)))
        ends = list(range(1, len(folded) + 1))
    pieces: list[str] = []
    new_starts: list[int] = []
    new_ends: list[int] = []
    done = 0
    for match in matches:
        begin, end = match.span()
        pieces.append(folded[done:begin])
        new_starts.extend(starts[done:begin])
        new_ends.extend(ends[done:begin])
        digits = str(kanji_number(match.group()))
        pieces.append(digits)
        new_starts.extend([starts[begin]] * len(digits))
        new_ends.extend([ends[end - 1]] * len(digits))
        done = end
    pieces.append(folded[done:])
    new_starts.extend(starts[done:])
    new_ends.extend(ends[done:])
    return "".join(pieces), new_starts, new_ends


def cjk_runs(text: str) -> list[str]:
    """The runs of Japanese/Chinese characters in `text`, normalised as the index has them.

    >>> cjk_runs("ＤＳＡと違法コンテンツ、ｽﾏｰﾄﾌｫﾝ")
    ['と違法コンテンツ', 'スマートフォン']
    """
    return _CJK_RUN.findall(normalise(text)[0])


class BilingualTokenizer(Tokenizer):
    """Normalises, then yields Latin words and CJK bigrams (see the module docstring).

    Each token has an extra attribute ``stemmable``: True for words, False for CJK
    bigrams/unigrams and for untokenised values, so that LatinStemFilter leaves
    those alone.
    """

    def __call__(self, value, positions=False, chars=False, keeporiginal=False,
                 removestops=True, start_pos=0, start_char=0, tokenize=True,
                 mode="", **kwargs):
        assert isinstance(value, str), f"{value!r} is not a str"
        token = Token(positions, chars, removestops=removestops, mode=mode, **kwargs)
        token.boost = 1.0

        if not tokenize:
            # The whole value as one token (the query parser asks for this for
            # wildcard, prefix and range terms): normalised, never stemmed.
            token.text = arabic_numerals(*normalise(value))[0]
            token.stemmable = False
            if keeporiginal:
                token.original = value
            if positions:
                token.pos = start_pos
            if chars:
                token.startchar = start_char
                token.endchar = start_char + len(value)
            yield token
            return

        # Whoosh passes mode="query" when parsing queries, "index" when indexing and
        # when re-tokenising stored text for highlighting.
        edge_unigrams = mode != "query"
        folded, starts, ends = arabic_numerals(*normalise(value))
        pos = start_pos
        for match in _TOKEN.finditer(folded):
            run = match.group(1)
            begin = match.start()
            if run is None or len(run) == 1:
                # A word, or a CJK run of one character (a unigram).
                pieces = ((match.group(), pos, begin, match.end()),)
                pos += 1
            else:
                last = len(run) - 1
                pieces = [(run[i:i + 2], pos + i, begin + i, begin + i + 2) for i in range(last)]
                if edge_unigrams:
                    # The first and last characters also as unigrams, at the positions
                    # of the first and last bigrams (so the bigrams stay consecutive),
                    # for queries whose run is a single character next to a digit or
                    # a Latin word: 第16条 must find "第16条の規定", where 条 starts the
                    # run 条の規定. Queries (mode="query") get bigrams only, since a
                    # Whoosh Phrase cannot hold two words at one position. Emitted in
                    # character order, first before and last after the bigrams, so
                    # that the matched bigrams of a hit stay together in the stream
                    # and Whoosh's highlighter merges them into one <mark>.
                    pieces.insert(0, (run[0], pos, begin, begin + 1))
                    pieces.append((run[last], pos + last - 1, begin + last, begin + last + 1))
                pos += last
            token.stemmable = run is None
            for text, tpos, tstart, tend in pieces:
                token.text = text
                if keeporiginal:
                    token.original = text
                if positions:
                    token.pos = tpos
                if chars:
                    if starts is None:
                        token.startchar = start_char + tstart
                        token.endchar = start_char + tend
                    else:
                        token.startchar = start_char + starts[tstart]
                        token.endchar = start_char + ends[tend - 1]
                yield token


class LatinStemFilter(StemFilter):
    """Whoosh's StemFilter with English Porter2, applied to words only, not to CJK tokens.

    Porter2 rather than Whoosh's default (the original Porter algorithm): it is more
    accurate ("news" stays "news" instead of "new") and, behind StemFilter's cache,
    no slower in practice.
    """

    def __init__(self, cachesize=50000):
        super().__init__(stemfn=porter2_stem, cachesize=cachesize)

    def clear(self):
        # functools.lru_cache instead of Whoosh's lfu_cache, which is not thread-safe
        # (two threads evicting from a full cache can raise KeyError) and is slower.
        # Called by __init__ and, after unpickling, by __setstate__.
        self._stem = functools.lru_cache(maxsize=self.cachesize)(self.stemfn)

    def __call__(self, tokens):
        stem = self._stem
        for token in tokens:
            if not token.stopped and getattr(token, "stemmable", True):
                token.text = stem(token.text)
            yield token


def bilingual_analyzer():
    """The analyzer for searchable text: NFKC, case folding, stemmed words, CJK bigrams.

    Declare the field with phrase queries for multi-token input, or Japanese runs
    match as scattered bigrams::

        TEXT(analyzer=bilingual_analyzer(), phrase=True, multitoken_query="phrase")
    """
    return BilingualTokenizer() | LatinStemFilter()


class BigramHighlighter(Highlighter):
    """whoosh.highlight.Highlighter, merging overlapping matches by their character spans.

    Whoosh merges a matched token into the previous one only if the two are next to
    each other in the token stream. With bigrams and edge unigrams, an unmatched token
    can sit between two parts of one match (in 第6条第7項, the edge unigram 条 of the run
    条第 between 6 and 条第), so Whoosh marks [第6][条第7項]; and when two matched tokens
    that do not touch are followed by one overlapping the second (削除、違法コンテンツ
    without edge unigrams), Whoosh 2.7.4 restarts the merge at the third token and its
    formatter drops it, marking [違法]コンテンツ. Here all matched spans that overlap or
    touch are merged, and unmatched tokens inside them are dropped.

    Use it like Whoosh's: ``results.highlighter = BigramHighlighter(fragmenter=…,
    formatter=…)``, then ``hit.highlights("body")``.
    """

    @staticmethod
    def _merge_matched_tokens(tokens):
        # Copies: tokenizers reuse one Token object.
        tokens = [token.copy() for token in tokens]
        merged: list[Token] = []
        for token in sorted((t for t in tokens if t.matched), key=lambda t: t.startchar):
            if merged and token.startchar <= merged[-1].endchar:
                merged[-1].endchar = max(merged[-1].endchar, token.endchar)
            else:
                merged.append(token)
        starts = [token.startchar for token in merged]
        kept = list(merged)
        for token in tokens:
            if not token.matched:
                # The last merged span starting before this token ends.
                i = bisect.bisect_left(starts, token.endchar) - 1
                if i < 0 or merged[i].endchar <= token.startchar:
                    kept.append(token)
        kept.sort(key=lambda t: t.startchar)
        return kept
