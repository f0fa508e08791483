"""Page benchmark: a realistically large database, then in-process timings of the heaviest pages.

Usage (from the repository root, with the project's virtualenv):

    .venv/bin/python bench/pages.py                  # build bench/out/pages.sqlite3 once, then measure
    .venv/bin/python bench/pages.py --rebuild        # force a fresh database
    .venv/bin/python bench/pages.py --runs 50 --notes 5000 --replies 50000   # a quick, smaller run
    .venv/bin/python bench/pages.py --explain        # also print each page's SQL and its query plans
    .venv/bin/python bench/pages.py --profile 30     # also profile 30 requests of each page
                                                     # (pyinstrument if installed in the venv, else cProfile)
    .venv/bin/python bench/pages.py --only thread --as moderator   # one page, as a channel moderator
    .venv/bin/python bench/pages.py --no-gc-freeze   # measure without wsgi.py's gc.freeze()

What it builds (deterministic for a given --seed, timestamps anchored at build time):
  * the schema through Alembic (portal.db.migrate) on a fresh SQLite file, then content/ loaded;
  * 8 organisations (4 EU, 4 JP), 40 users sharing one precomputed password hash, 6 channels
    (joint, joint, eu, jp, private with named members, archived joint);
  * --notes notes and --replies replies bulk-inserted with SQLAlchemy Core executemany:
    titles of ~8 words, Markdown bodies of ~150 words (a pool of rendered bodies reused), 30 %
    Japanese, updates/cases/questions with their fields, topics, citations, case milestones, one
    revision row per note and per reply, reply trees mostly top-level or depth 1-3 and some deeper,
    reply_count (live replies) and last_activity_at consistent with the replies, a few soft deletions;
  * exactly one note with exactly 500 replies (mixed depth 0-6, all shown on its page): the thread
    that is measured.

What it measures, in-process with app.test_client() signed in as an EU member who sees the
joint, EU and private channels: --runs GETs (round-robin, after a warm-up) of the 500-reply note
page, the first page of the biggest channel and the dashboard.  It checks every status is 200 and
that the thread page holds 500 replies, and prints p50/p95/max (ms), response sizes and the number
of SQL statements per request (an SQLAlchemy before_cursor_execute counter; a rising count with
data size means an N+1 query).  Next to the wall-clock figures (time.perf_counter) it prints the
process CPU time of the same requests and the load average: on a shared machine the wall clock
includes waiting for a CPU, the CPU time does not.  Measurement always runs in a fresh interpreter
(the script re-executes itself after a build) so that the build's heap does not lengthen garbage
collections.

Targets (issue): thread page p95 < 100 ms, channel page p95 < 30 ms on the 2-core machine.
The database and a JSON sidecar describing it live in bench/out/ (git-ignored); an existing
database built with the same --notes/--replies/--seed is reused.
"""
from __future__ import annotations

import argparse
import cProfile
import gc
import io
import json
import math
import os
import platform
import pstats
import random
import re
import sqlite3
import statistics
import sys
import time
from collections import Counter
from datetime import datetime, timedelta
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Run as a script, bench/ (not the repository) is on sys.path, and the editable install's finder
# then resolves `portal` to an empty namespace package: put the repository first.
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from sqlalchemy import bindparam, event, insert, select, update  # noqa: E402

from portal import create_app  # noqa: E402
from portal.db import engine as app_engine  # noqa: E402
from portal.db import get_session, migrate, utcnow  # noqa: E402
from portal.markup import render_markdown  # noqa: E402
from portal.models import (  # noqa: E402
    Article,
    CaseMilestone,
    Channel,
    Note,
    NoteArticle,
    NoteRevision,
    Reply,
    ReplyRevision,
    Topic,
    User,
    note_topics,
)
from portal.services import accounts, channels, content  # noqa: E402

DEFAULT_DB = ROOT / "bench" / "out" / "pages.sqlite3"
PASSWORD = "bench pages passphrase 2026"
THREAD_REPLIES = 500
THREAD_MAX_DEPTH = 6  # the app's THREAD_MAX_DEPTH default: deeper replies move to a sub-page
OTHER_NOTE_CAP = 400  # no other note reaches 500 replies
BATCH = 5_000
COMMIT_EVERY = 50_000

# --------------------------------------------------------------------------------------------
# Text: a small domain vocabulary, English and Japanese.
# --------------------------------------------------------------------------------------------

EN_SUBJECTS = [
    "The gatekeeper", "The platform operator", "Our preliminary assessment", "The Commission",
    "The JFTC", "The designated app store provider", "The provider", "The working group",
    "The draft guidance", "The latest transparency report", "The compliance function",
    "The national coordinator", "Our case team", "The browser vendor", "The search engine",
    "The marketplace", "The complainant", "The ministry",
]
EN_VERBS = [
    "has submitted new information on", "appears to restrict", "is expected to publish details of",
    "clarified its position on", "raised concerns about", "will review", "has not yet addressed",
    "proposed changes to", "requested more time to document", "confirmed the timeline for",
    "asked for a technical meeting on", "published a consultation on", "narrowed the scope of",
]
EN_OBJECTS = [
    "the interoperability obligations", "alternative payment systems", "the choice screen design",
    "data portability requests", "its annual compliance report", "default settings on mobile devices",
    "the age-verification measures", "the systemic risk assessment", "the anti-steering provisions",
    "sideloading restrictions", "the fees charged to developers", "access to browser engines",
    "ranking transparency", "the notice-and-action mechanism", "recommender system options",
    "cross-border data transfers", "the handling of trusted flagger notices",
]
EN_TAILS = [
    "under DSA Art. 34", "before the end of the quarter", "in both jurisdictions",
    "following the last exchange", "as discussed at the joint meeting", "for users in Japan",
    "in the EEA", "under Art. 6(7) DMA", "in the second review cycle", "", "", "",
    "with reference to the MSCA guidelines", "pending the outcome of the market test",
]
EN_TITLE_HEADS = [
    "Follow-up on", "Question on", "Update:", "Preliminary findings on", "Clarification request on",
    "Notes from the meeting on", "Comparison of approaches to", "Timeline for", "Draft position on",
]
EN_TITLE_TAILS = [
    "in the EU and Japan", "after the latest submission", "for smartphone platforms",
    "ahead of the next dialogue", "and next steps", "in the second half of the year", "",
]

JA_SUBJECTS = [
    "ゲートキーパーは", "当該事業者は", "公正取引委員会は", "欧州委員会は", "作業部会は",
    "プラットフォーム事業者は", "指定事業者は", "総務省は", "個人情報保護委員会は", "申告者は",
]
JA_OBJECTS = [
    "相互運用性に関する義務について", "代替決済手段の導入について", "選択画面の設計について",
    "データポータビリティの要請について", "年次コンプライアンス報告書について",
    "スマートフォンの初期設定について", "年齢確認措置について", "アンチステアリング条項について",
    "サイドローディングの制限について", "開発者に課される手数料について",
    "ブラウザエンジンへのアクセスについて", "ランキングの透明性について", "越境データ移転について",
]
JA_VERBS = [
    "追加の説明を求めています。", "懸念を表明しました。", "来月までに回答する予定です。",
    "ガイドライン案を公表しました。", "引き続き検討を行っています。", "意見募集を実施しました。",
    "報告書を提出しました。", "技術的な会合の開催を提案しました。", "スケジュールを確認しました。",
]
JA_TAILS = [
    "スマホ新法第7条に基づき、", "前回の会合を踏まえ、", "日EU間の比較として、", "", "",
    "現時点では、", "第二回の見直しに向けて、", "市場テストの結果を待って、",
]
JA_TITLE_TAILS = [
    "に関する質問", "の進捗状況", "についての予備的見解", "に関する会合メモ", "の比較",
    "に関する確認事項", "の今後の予定",
]

CASE_LABELS_EN = ["Reply to request for information due", "Hearing", "Preliminary findings expected",
                  "Market test closes", "Decision deadline", "Compliance report due"]
CASE_LABELS_JA = ["情報提供要請への回答期限", "意見聴取", "予備的見解の公表予定", "市場テスト終了",
                  "決定期限", "遵守報告書の提出期限"]
PLATFORMS = ["Apple", "Google", "Meta", "Amazon", "Microsoft", "ByteDance", "Booking", "LINE Yahoo",
             "Rakuten", "Mercari"]


def en_sentence(rng: random.Random) -> str:
    tail = rng.choice(EN_TAILS)
    return f"{rng.choice(EN_SUBJECTS)} {rng.choice(EN_VERBS)} {rng.choice(EN_OBJECTS)}" + (
        f" {tail}." if tail else ".")


def ja_sentence(rng: random.Random) -> str:
    return rng.choice(JA_TAILS) + rng.choice(JA_SUBJECTS) + rng.choice(JA_OBJECTS) + rng.choice(JA_VERBS)


def en_title(rng: random.Random) -> str:
    obj = rng.choice(EN_OBJECTS).removeprefix("the ").removeprefix("its ")
    tail = rng.choice(EN_TITLE_TAILS)
    return f"{rng.choice(EN_TITLE_HEADS)} {obj}" + (f" {tail}" if tail else "")


def ja_title(rng: random.Random) -> str:
    return rng.choice(JA_OBJECTS).removesuffix("について") + rng.choice(JA_TITLE_TAILS)


def note_markdown(rng: random.Random, lang: str) -> str:
    """~150 words (or ~400 Japanese characters) of Markdown: paragraphs, a list, emphasis, a link."""
    sentence = ja_sentence if lang == "ja" else en_sentence
    joiner = "" if lang == "ja" else " "
    parts = []
    for _ in range(rng.randint(2, 3)):
        parts.append(joiner.join(sentence(rng) for _ in range(rng.randint(3, 4))))
    if rng.random() < 0.5:
        parts.insert(1, "\n".join(f"- {sentence(rng)}" for _ in range(3)))
    if rng.random() < 0.5:
        parts[0] = ("**要旨：** " if lang == "ja" else "**Summary:** ") + parts[0]
    if rng.random() < 0.4:
        parts.append(rng.choice([
            "See [EUR-Lex](https://eur-lex.europa.eu/eli/reg/2022/2065/oj) for the text.",
            "Background: [JFTC press release](https://www.jftc.go.jp/en/pressreleases/).",
            "参考: [公正取引委員会](https://www.jftc.go.jp/)",
        ]))
    return "\n\n".join(parts)


def reply_markdown(rng: random.Random, lang: str) -> str:
    """A reply: one to three short paragraphs (~15-120 words), sometimes quoting."""
    sentence = ja_sentence if lang == "ja" else en_sentence
    joiner = "" if lang == "ja" else " "
    parts = [joiner.join(sentence(rng) for _ in range(rng.randint(1, 4)))
             for _ in range(rng.choice((1, 1, 2, 2, 3)))]
    if rng.random() < 0.15:
        parts.insert(0, "> " + sentence(rng))
    if rng.random() < 0.1:
        parts.append("\n".join(f"1. {sentence(rng)}" for _ in range(2)))
    return "\n\n".join(parts)


# --------------------------------------------------------------------------------------------
# Build
# --------------------------------------------------------------------------------------------

ORGS = [
    ("dg-cnect", "DG CNECT", "eu"), ("dg-comp", "DG COMP", "eu"),
    ("edpb", "European Data Protection Board", "eu"), ("bnetza", "Bundesnetzagentur", "eu"),
    ("jftc", "Japan Fair Trade Commission", "jp"), ("meti", "Ministry of Economy, Trade and Industry", "jp"),
    ("mic", "Ministry of Internal Affairs and Communications", "jp"),
    ("ppc", "Personal Information Protection Commission", "jp"),
]
FIRST = {"eu": ["Eva", "Lukas", "Sofia", "Marco", "Anna", "Pieter", "Inès", "Jonas", "Clara", "Mateusz"],
         "jp": ["Kenji", "Aiko", "Haruto", "Yui", "Takumi", "Sakura", "Ren", "Mei", "Daichi", "Hina"]}
LAST = {"eu": ["Schmidt", "Rossi", "Dubois", "Novak", "Jansen", "García", "Kowalski", "Laine", "Murphy", "Costa"],
        "jp": ["Sato", "Suzuki", "Takahashi", "Tanaka", "Watanabe", "Ito", "Yamamoto", "Nakamura", "Kobayashi", "Kato"]}
# slug, name_en, name_ja, visibility, share of notes, archived
CHANNELS = [
    ("platforms", "Platform regulation", "プラットフォーム規制", "joint", 0.40, False),
    ("data-protection", "Data protection", "個人データ保護", "joint", 0.20, False),
    ("eu-coordination", "EU coordination", "EU内部調整", "eu", 0.12, False),
    ("jp-coordination", "Japan coordination", "日本側調整", "jp", 0.12, False),
    ("dma-msca-cases", "DMA / MSCA cases (restricted)", "DMA・スマホ新法事案（限定）", "private", 0.10, False),
    ("archive-2023", "2023 dialogue (archived)", "2023年対話（アーカイブ）", "joint", 0.06, True),
]
KIND_WEIGHTS = (("update", 0.5), ("case", 0.25), ("question", 0.25))


def pick(rng: random.Random, weighted):
    r, acc = rng.random(), 0.0
    for value, weight in weighted:
        acc += weight
        if r < acc:
            return value
    return weighted[-1][0]


def reply_tree(rng: random.Random, n: int, max_depth: int) -> tuple[list[int], list[int]]:
    """Parents (local index or -1) and depths of n replies in posting order.

    About 40 % are top-level; the others answer a recent reply, more readily a shallow one,
    so most replies sit at depth 0-3 and a few go deeper.
    """
    parents: list[int] = []
    depths: list[int] = []
    for k in range(n):
        parent = -1
        if k and rng.random() >= 0.4:
            for _ in range(4):
                j = k - 1 - int(rng.expovariate(1 / 5))
                if j < 0:
                    j = rng.randrange(k)
                if depths[j] < max_depth and rng.random() < 0.78 ** depths[j]:
                    parent = j
                    break
        parents.append(parent)
        depths.append(depths[parent] + 1 if parent >= 0 else 0)
    return parents, depths


def reply_counts(rng: random.Random, n_notes: int, total: int, thread_idx: int) -> list[int]:
    """Replies per note: a skewed spread (a quarter of notes have none), summing exactly to total."""
    rest = total - (THREAD_REPLIES if thread_idx >= 0 else 0)
    weights = [0.0 if rng.random() < 0.25 else rng.lognormvariate(0, 1.2) for _ in range(n_notes)]
    if thread_idx >= 0:
        weights[thread_idx] = 0.0
    s = sum(weights) or 1.0
    counts = [min(OTHER_NOTE_CAP, int(w / s * rest)) for w in weights]
    candidates = [i for i, w in enumerate(weights) if w > 0]
    deficit = rest - sum(counts)
    while deficit > 0:
        i = rng.choice(candidates)
        if counts[i] < OTHER_NOTE_CAP:
            counts[i] += 1
            deficit -= 1
    if thread_idx >= 0:
        counts[thread_idx] = THREAD_REPLIES
    return counts


def progress(message: str, started: float) -> None:
    print(f"  [{time.perf_counter() - started:7.1f}s] {message}", flush=True)


def build(db_path: Path, args) -> dict:
    started = time.perf_counter()
    rng = random.Random(args.seed)
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db_path}{suffix}").unlink(missing_ok=True)
    db_path.parent.mkdir(parents=True, exist_ok=True)
    app = make_app(db_path)
    with app.app_context():
        eng = app_engine()
        migrate(eng)
        session = get_session()
        content.load_content(session)
        session.commit()
        progress("schema migrated, content loaded", started)

        # ---- organisations, users, channels (through the services) ----------------------------
        shared_hash = accounts.hash_password(PASSWORD)
        old = utcnow() - timedelta(days=4 * 365)
        orgs = [accounts.create_organisation(session, slug=s, name=n, side=side) for s, n, side in ORGS]
        users: list[User] = []
        for o_index, org in enumerate(orgs):
            for u in range(5):
                first = FIRST[org.side][(o_index * 5 + u) % 10]
                last = LAST[org.side][(o_index * 3 + u * 7) % 10]
                role = "admin" if u == 0 and o_index in (0, 4) else ("moderator" if u == 1 else "member")
                user = accounts.create_user(
                    session, email=f"{first}.{last}.{u}@{org.slug}.example.{org.side}".lower(),
                    name=f"{first} {last}", organisation=org, role=role,
                    lang="ja" if org.side == "jp" and u % 2 == 0 else "en",
                )
                user.password_hash = shared_hash
                user.created_at = old
                users.append(user)
        eu_users = [u for u in users if u.side == "eu"]
        jp_users = [u for u in users if u.side == "jp"]
        # The reader whose pages are timed: an EU member, in the private channel, not a moderator.
        reader = next(u for u in eu_users if u.role == "member")
        chans: list[Channel] = []
        for slug, name_en, name_ja, visibility, _share, _archived in CHANNELS:
            chans.append(channels.create_channel(session, {
                "slug": slug, "name_en": name_en, "name_ja": name_ja, "visibility": visibility,
                "description_en": f"Exchanges on {name_en.lower()} between the EU and Japan.",
                "description_ja": f"{name_ja}に関する日EU間の情報交換。",
            }, actor=None))
        private = chans[4]
        private_members = [reader] + rng.sample([u for u in eu_users if u is not reader], 4) + rng.sample(jp_users, 5)
        for i, member in enumerate(private_members):
            channels.add_member(session, private, member, is_moderator=(i == 5), actor=None)
        session.commit()
        eligible = {
            "joint": users, "eu": eu_users, "jp": jp_users, "private": private_members,
        }
        user_side = {u.id: u.side for u in users}
        channel_ids = [c.id for c in chans]
        channel_users = [[u.id for u in eligible[c.visibility]] for c in chans]
        topics = [(t.id, t.slug) for t in session.scalars(select(Topic).order_by(Topic.id))]
        articles = [(a.id, f"{a.act.short} Art. {a.number}") for a in session.scalars(select(Article))]
        reader_email = reader.email
        session.close()
        progress(f"{len(orgs)} organisations, {len(users)} users, {len(chans)} channels", started)

        # ---- rendered body pools ----------------------------------------------------------------
        note_pool = {lang: [] for lang in ("en", "ja")}
        reply_pool = {lang: [] for lang in ("en", "ja")}
        for lang, n in (("en", 140), ("ja", 60)):
            for _ in range(n):
                md = note_markdown(rng, lang)
                note_pool[lang].append((md, render_markdown(md)))
        for lang, n in (("en", 210), ("ja", 90)):
            for _ in range(n):
                md = reply_markdown(rng, lang)
                reply_pool[lang].append((md, render_markdown(md)))
        words = statistics.mean(len(md.split()) for md, _ in note_pool["en"])
        progress(f"rendered {sum(map(len, note_pool.values()))} note bodies (~{words:.0f} words each in "
                 f"English) and {sum(map(len, reply_pool.values()))} reply bodies", started)

        # ---- notes ------------------------------------------------------------------------------
        now = utcnow().replace(microsecond=0)
        span = 3 * 365 * 86400
        n_notes = args.notes
        created = sorted(now - timedelta(seconds=rng.uniform(3600, span)) for _ in range(n_notes))
        notes_meta = []  # per note: channel index, author id, lang, kind, created
        shares = [(i, c[4]) for i, c in enumerate(CHANNELS)]
        for t in created:
            ci = pick(rng, shares)
            if CHANNELS[ci][5] and (now - t).days < 400:
                ci = 0  # the archive holds old notes only
            author = rng.choice(channel_users[ci])
            side = user_side[author]
            lang = "ja" if rng.random() < (0.55 if side == "jp" else 0.05) else "en"
            notes_meta.append([ci, author, lang, pick(rng, KIND_WEIGHTS), t])
        # The measured thread: a question in the biggest channel, opened ~45 days ago.
        target = now - timedelta(days=45)
        thread_idx = min((i for i, m in enumerate(notes_meta) if m[0] == 0),
                         key=lambda i: abs((created[i] - target).total_seconds()))
        notes_meta[thread_idx][2] = "en"
        notes_meta[thread_idx][3] = "question"
        notes_meta[thread_idx][1] = next(u for u in channel_users[0] if user_side[u] == "jp")

        counts = reply_counts(rng, n_notes, args.replies, thread_idx)

        # ---- reply trees and times ----------------------------------------------------------------
        trees = []  # per note: (parents, depths, times, authors, langs, deleted)
        order = []  # (timestamp, note index, local index) for global id assignment
        for i, n in enumerate(counts):
            if n == 0:
                trees.append(None)
                continue
            ci, author, _lang, _kind, t0 = notes_meta[i]
            parents, depths = reply_tree(rng, n, THREAD_MAX_DEPTH if i == thread_idx else 12)
            gaps = [rng.expovariate(1 / (6 * 3600)) for _ in range(n)]
            limit = max(60.0, min((now - t0).total_seconds() - 1, 120 * 86400))
            scale = min(1.0, limit / sum(gaps))
            base = t0.timestamp()
            times, acc = [], 0.0
            for g in gaps:
                acc += max(g * scale, 0.001)
                times.append(base + acc)
            pool = channel_users[ci]
            authors = [author if rng.random() < 0.2 else rng.choice(pool) for _ in range(n)]
            langs = ["ja" if rng.random() < (0.55 if user_side[a] == "jp" else 0.05) else "en" for a in authors]
            deleted = [i != thread_idx and rng.random() < 0.005 for _ in range(n)]
            trees.append((parents, depths, times, authors, langs, deleted))
            order.extend((tm, i, k) for k, tm in enumerate(times))
        order.sort()
        ids_by_note = [[0] * n for n in counts]
        for rank, (_t, i, k) in enumerate(order, start=1):
            ids_by_note[i][k] = rank
        progress(f"planned {len(order)} replies in {sum(1 for c in counts if c)} threads", started)

        # Per-note aggregates that the app maintains on posting.
        live_counts = [0] * n_notes
        last_times = [0.0] * n_notes
        for i, tree in enumerate(trees):
            if tree:
                live_counts[i] = sum(1 for d in tree[5] if not d)
                last_times[i] = tree[2][-1]

        notes_t, revisions_t, topics_t, articles_t = (
            Note.__table__, NoteRevision.__table__, note_topics, NoteArticle.__table__)
        milestones_t, replies_t, reply_revs_t = CaseMilestone.__table__, Reply.__table__, ReplyRevision.__table__

        with eng.connect() as conn:
            conn.exec_driver_sql("PRAGMA synchronous=OFF")
            conn.exec_driver_sql("PRAGMA cache_size=-400000")
            note_rows, rev_rows, topic_rows, cite_rows, milestone_rows, accepted = [], [], [], [], [], []
            stats = Counter()
            for i, (ci, author, lang, kind, t0) in enumerate(notes_meta):
                note_id = i + 1
                md, html = rng.choice(note_pool[lang])
                title = ja_title(rng) if lang == "ja" else en_title(rng)
                last = datetime.fromtimestamp(last_times[i]) if last_times[i] else t0
                row = dict(
                    id=note_id, external_id=None, channel_id=channel_ids[ci], author_id=author, kind=kind,
                    title=title, body=md, body_html=html, lang=lang,
                    marking=pick(rng, (("public", 0.2), ("limited", 0.65), ("sensitive", 0.15))),
                    case_reference="", platforms="", legal_basis="", case_status=None,
                    addressed_side=None, answer_by=None, question_state=None, declined_grounds="",
                    accepted_reply_id=None, revision=1, reply_count=live_counts[i], created_at=t0,
                    updated_at=t0, last_activity_at=max(t0, last), deleted_at=None, deleted_by_id=None,
                )
                chosen_topics = rng.sample(topics, rng.choice((1, 1, 2, 2, 3)))
                chosen_articles = rng.sample(articles, rng.choice((0, 1, 1, 2, 3)))
                citations = [(a_id, label, rng.choice(("", "", "", "(1)", "(2)", "(7)")))
                             for a_id, label in chosen_articles]
                milestones = []
                if kind == "case":
                    row["case_reference"] = f"{rng.choice(('DMA', 'AT', 'DSA', 'JFTC'))}.{rng.randint(10000, 99999)}"
                    row["platforms"] = ", ".join(rng.sample(PLATFORMS, rng.randint(1, 2)))
                    row["legal_basis"] = citations[0][1] + citations[0][2] if citations else ""
                    row["case_status"] = pick(rng, (("open", 0.25), ("investigating", 0.35),
                                                    ("preliminary_findings", 0.15),
                                                    ("decision_adopted", 0.1), ("closed", 0.15)))
                    labels = CASE_LABELS_JA if lang == "ja" else CASE_LABELS_EN
                    for _ in range(rng.choice((0, 1, 2, 3))):
                        due = t0.date() + timedelta(days=rng.randint(10, 420))
                        milestones.append((due, rng.choice(labels)))
                    milestones.sort()
                elif kind == "question":
                    row["addressed_side"] = "jp" if user_side[author] == "eu" else "eu"
                    row["answer_by"] = t0.date() + timedelta(days=rng.randint(14, 60))
                    recent = (now - t0).days < 90
                    state = pick(rng, (("open", 0.6), ("answered", 0.3), ("declined", 0.1)) if recent
                                 else (("open", 0.1), ("answered", 0.75), ("declined", 0.15)))
                    if i == thread_idx:
                        state = "open"
                    tree = trees[i]
                    if state == "answered":
                        live = [k for k in range(counts[i]) if not tree[5][k]] if tree else []
                        if live:
                            accepted.append({"nid": note_id, "rid": ids_by_note[i][rng.choice(live[:5])]})
                        else:
                            state = "open"
                    if state == "declined":
                        row["declined_grounds"] = "The matter is under investigation and cannot be discussed."
                    row["question_state"] = state
                if i != thread_idx and rng.random() < 0.005:
                    row["deleted_at"] = row["last_activity_at"] + timedelta(days=1)
                    row["deleted_by_id"] = author
                    stats["deleted notes"] += 1
                stats[f"{kind}"] += 1
                stats[f"lang {lang}"] += 1
                note_rows.append(row)
                rev_rows.append(dict(
                    note_id=note_id, number=1, title=title, body=md, editor_id=author, created_at=t0,
                    attributes={
                        "lang": lang, "marking": row["marking"],
                        "topics": sorted(slug for _id, slug in chosen_topics),
                        "articles": [label + pin for _id, label, pin in citations],
                        "case_reference": row["case_reference"], "platforms": row["platforms"],
                        "legal_basis": row["legal_basis"], "case_status": row["case_status"],
                        "answer_by": row["answer_by"].isoformat() if row["answer_by"] else None,
                        "milestones": [f"{d.isoformat()} {label}" for d, label in milestones],
                    },
                ))
                topic_rows.extend({"note_id": note_id, "topic_id": t_id} for t_id, _slug in chosen_topics)
                cite_rows.extend({"note_id": note_id, "article_id": a_id, "pinpoint": pin}
                                 for a_id, _label, pin in citations)
                milestone_rows.extend({"note_id": note_id, "due_on": d, "label": label} for d, label in milestones)
            for table, rows in ((notes_t, note_rows), (revisions_t, rev_rows), (topics_t, topic_rows),
                                (articles_t, cite_rows), (milestones_t, milestone_rows)):
                bulk(conn, table, rows)
            progress(f"inserted {len(note_rows)} notes, {len(rev_rows)} note revisions, {len(topic_rows)} "
                     f"topic links, {len(cite_rows)} citations, {len(milestone_rows)} milestones", started)
            del note_rows, rev_rows, topic_rows, cite_rows, milestone_rows

            # ---- replies, in id (= time) order so every parent precedes its children -------------
            paths = [""] * (len(order) + 1)
            body_of = [0] * (len(order) + 1)  # which pool body each reply got, for its revision row
            depth_all, depth_thread = Counter(), Counter()
            reply_langs = Counter()

            def reply_rows():
                for rank, (tm, i, k) in enumerate(order, start=1):
                    parents, depths, _times, authors, langs, deleted = trees[i]
                    p = parents[k]
                    parent_id = ids_by_note[i][p] if p >= 0 else None
                    path = (paths[parent_id] if parent_id else "") + f"{rank:010d}/"
                    paths[rank] = path
                    at = datetime.fromtimestamp(tm).replace(microsecond=0)
                    choice = rng.randrange(len(reply_pool[langs[k]]))
                    body_of[rank] = choice
                    md, html = reply_pool[langs[k]][choice]
                    depth_all[depths[k]] += 1
                    reply_langs[langs[k]] += 1
                    if i == thread_idx:
                        depth_thread[depths[k]] += 1
                    yield dict(
                        id=rank, note_id=i + 1, parent_id=parent_id, author_id=authors[k], body=md,
                        body_html=html, depth=depths[k], path=path, revision=1, created_at=at,
                        updated_at=at, deleted_at=at + timedelta(hours=2) if deleted[k] else None,
                        deleted_by_id=authors[k] if deleted[k] else None,
                    )

            def reply_revision_rows():
                for rank, (tm, i, k) in enumerate(order, start=1):
                    _p, _d, _t, authors, langs, _del = trees[i]
                    yield dict(reply_id=rank, number=1, body=reply_pool[langs[k]][body_of[rank]][0],
                               editor_id=authors[k],
                               created_at=datetime.fromtimestamp(tm).replace(microsecond=0))

            bulk(conn, replies_t, reply_rows(), label="replies", started=started)
            bulk(conn, reply_revs_t, reply_revision_rows(), label="reply revisions", started=started)
            if accepted:
                conn.execute(update(notes_t).where(notes_t.c.id == bindparam("nid"))
                             .values(accepted_reply_id=bindparam("rid")), accepted)
            conn.commit()
            if args.analyze:
                conn.exec_driver_sql("ANALYZE")
                conn.commit()
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        eng.dispose()

    thread_note_id = thread_idx + 1
    elapsed = time.perf_counter() - started
    meta = {
        "notes": args.notes, "replies": args.replies, "seed": args.seed, "analyze": args.analyze,
        "built_at": now.isoformat(), "build_seconds": round(elapsed, 1),
        "thread_note_id": thread_note_id, "channel_slug": CHANNELS[0][0], "reader_email": reader_email,
        "db_bytes": db_path.stat().st_size,
        "stats": {
            **stats, "accepted answers": len(accepted),
            "reply lang": dict(reply_langs),
            "reply depth (all)": {str(k): v for k, v in sorted(depth_all.items())},
            "reply depth (measured thread)": {str(k): v for k, v in sorted(depth_thread.items())},
            "max replies on another note": max(c for i, c in enumerate(counts) if i != thread_idx),
            "notes without replies": sum(1 for c in counts if c == 0),
        },
    }
    sidecar(db_path).write_text(json.dumps(meta, indent=2, ensure_ascii=False))
    print(f"Build took {elapsed:.1f} s; database {meta['db_bytes'] / 1e6:.0f} MB at {db_path}", flush=True)
    return meta


def bulk(conn, table, rows, *, label: str | None = None, started: float | None = None) -> None:
    """Core insert() executemany in batches, committing every COMMIT_EVERY rows."""
    batch, done = [], 0
    for row in rows:
        batch.append(row)
        if len(batch) >= BATCH:
            conn.execute(insert(table), batch)
            done += len(batch)
            batch = []
            if done % COMMIT_EVERY == 0:
                conn.commit()
                if label and done % (COMMIT_EVERY * 4) == 0:
                    progress(f"{done} {label}", started)
    if batch:
        conn.execute(insert(table), batch)
        done += len(batch)
    conn.commit()
    if label:
        progress(f"inserted {done} {label}", started)


def sidecar(db_path: Path) -> Path:
    return db_path.with_name(db_path.name + ".json")


def existing_build(db_path: Path, args) -> dict | None:
    """The sidecar of a database built with the same parameters, or None (then build anew)."""
    meta_path = sidecar(db_path)
    if not db_path.exists() or not meta_path.exists():
        return None
    meta = json.loads(meta_path.read_text())
    wanted = {"notes": args.notes, "replies": args.replies, "seed": args.seed}
    if any(meta.get(k) != v for k, v in wanted.items()):
        print(f"Existing database was built with {({k: meta.get(k) for k in wanted})}; rebuilding.")
        return None
    with sqlite3.connect(db_path) as con:
        n_notes, n_replies = con.execute("SELECT (SELECT count(*) FROM notes), (SELECT count(*) FROM replies)").fetchone()
    if (n_notes, n_replies) != (args.notes, args.replies):
        print(f"Existing database holds {n_notes} notes and {n_replies} replies; rebuilding.")
        return None
    return meta


# --------------------------------------------------------------------------------------------
# Measure
# --------------------------------------------------------------------------------------------


def make_app(db_path: Path):
    return create_app({
        "INSTANCE_PATH": str(db_path.parent / "instance"),
        "DATABASE_URL": f"sqlite:///{db_path}",
        "SECRET_KEY": "bench-secret-key",
        "WTF_CSRF_ENABLED": False,
    })


REPLY_ID = re.compile(rb'id="reply-\d+"')


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile."""
    return sorted_values[max(0, math.ceil(q * len(sorted_values)) - 1)]


def measure(db_path: Path, meta: dict, args) -> None:
    app = make_app(db_path)
    statements: list[tuple[str, object]] = []

    @event.listens_for(app.extensions["db_engine"], "before_cursor_execute")
    def _count(_conn, _cursor, statement, params, _context, _executemany):
        statements.append((statement, params))

    email = meta["reader_email"]
    if args.as_ == "moderator":
        with sqlite3.connect(db_path) as con:
            email = con.execute(
                "SELECT users.email FROM users JOIN organisations ON organisations.id = users.organisation_id "
                "WHERE users.role = 'moderator' AND organisations.side = 'eu' ORDER BY users.id").fetchone()[0]
    client = app.test_client()
    response = client.post("/login", data={"email": email, "password": PASSWORD})
    if response.status_code != 302:
        sys.exit(f"Sign-in failed ({response.status_code}): {response.get_data(as_text=True)[:300]}")

    all_pages = {
        f"thread (/notes/{meta['thread_note_id']}, {THREAD_REPLIES} replies)": f"/notes/{meta['thread_note_id']}",
        f"channel (/channels/{meta['channel_slug']}, page 1)": f"/channels/{meta['channel_slug']}",
        "dashboard (/)": "/",
    }
    pages = {name: url for name, url in all_pages.items() if not args.only or name.split()[0] in args.only}

    def get(url: str):
        response = client.get(url)
        if response.status_code != 200:
            sys.exit(f"GET {url} returned {response.status_code}: {response.get_data(as_text=True)[:300]}")
        return response

    # Check once what each page holds, and how many statements it runs.
    sql_counts, sizes, sql_text = {}, {}, {}
    for name, url in pages.items():
        get(url)  # first hit: template compilation, caches
        statements.clear()
        body = get(url).get_data()
        sql_counts[name], sizes[name], sql_text[name] = len(statements), len(body), list(statements)
        if url.startswith("/notes/"):
            shown = len(REPLY_ID.findall(body))
            if shown != THREAD_REPLIES:
                sys.exit(f"The thread page shows {shown} replies, expected {THREAD_REPLIES}.")
    for _ in range(args.warmup):
        for url in pages.values():
            get(url)
    if args.gc_freeze:
        # What wsgi.py does: objects alive after start-up are left out of every later
        # collection, so a full (generation 2) collection no longer re-scans the loaded app.
        gc.collect()
        gc.freeze()
    gc_before = [stat["collections"] for stat in gc.get_stats()]

    timings: dict[str, list[float]] = {name: [] for name in pages}
    cpu: dict[str, list[float]] = {name: [] for name in pages}
    per_request_sql: dict[str, set[int]] = {name: set() for name in pages}
    load_before = os.getloadavg()
    for _ in range(args.runs):
        for name, url in pages.items():
            statements.clear()
            c0 = time.process_time()
            t0 = time.perf_counter()
            response = client.get(url)
            elapsed = time.perf_counter() - t0
            cpu[name].append((time.process_time() - c0) * 1000)
            if response.status_code != 200:
                sys.exit(f"GET {url} returned {response.status_code}")
            if url.startswith("/notes/") and len(REPLY_ID.findall(response.get_data())) != THREAD_REPLIES:
                sys.exit("The thread page no longer shows 500 replies.")
            timings[name].append(elapsed * 1000)
            per_request_sql[name].add(len(statements))

    print()
    print(f"Python {platform.python_version()} ({platform.python_implementation()}), SQLite "
          f"{sqlite3.sqlite_version}, SQLAlchemy {metadata.version('sqlalchemy')}, Flask "
          f"{metadata.version('flask')}, Jinja2 {metadata.version('jinja2')}, {platform.machine()}, "
          f"{platform.system()} {platform.release()}, CPUs: {os.cpu_count()}")
    print(f"Database: {meta['notes']} notes, {meta['replies']} replies, seed {meta['seed']}, "
          f"{db_path.stat().st_size / 1e6:.0f} MB, sqlite_stat1 "
          f"{'present' if meta.get('analyze') else 'absent (no ANALYZE)'}; built in {meta['build_seconds']} s")
    load_after = os.getloadavg()
    gc_runs = [stat["collections"] - before for stat, before in zip(gc.get_stats(), gc_before)]
    print(f"{args.runs} timed requests per page (round-robin, after {args.warmup} warm-up rounds), "
          f"signed in as {email} ({args.as_})")
    print(f"Garbage collections during timing: {gc_runs[0]} / {gc_runs[1]} / {gc_runs[2]} (generation 0 / 1 / 2)"
          f"{'; gc.freeze() after warm-up' if args.gc_freeze else ''}")
    print(f"1-minute load average: {load_before[0]:.2f} before timing, {load_after[0]:.2f} after "
          f"(above {os.cpu_count()} means other processes competed for the CPUs: trust the CPU column more)")
    print()
    header = (f"{'page':<44} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8} {'mean ms':>8} {'CPU p50':>8} "
              f"{'CPU p95':>8} {'size KB':>8} {'SQL':>5}")
    print(header)
    print("-" * len(header))
    for name, values in timings.items():
        ordered = sorted(values)
        counts = per_request_sql[name]
        sql = str(min(counts)) if len(counts) == 1 else f"{min(counts)}-{max(counts)}"
        print(f"{name:<44} {statistics.median(ordered):8.1f} {percentile(ordered, 0.95):8.1f} "
              f"{ordered[-1]:8.1f} {statistics.fmean(ordered):8.1f} {statistics.median(cpu[name]):8.1f} "
              f"{percentile(sorted(cpu[name]), 0.95):8.1f} {sizes[name] / 1024:8.1f} {sql:>5}")
    print("(wall-clock ms from time.perf_counter; CPU = process CPU ms of the same request; SQL = statements "
          "per request)")
    print()
    targets = {"thread": 100.0, "channel": 30.0}
    for name, values in timings.items():
        kind = name.split()[0]
        if kind in targets:
            p95 = percentile(sorted(values), 0.95)
            verdict = "met" if p95 < targets[kind] else "MISSED"
            print(f"target {kind} p95 < {targets[kind]:.0f} ms: {verdict} ({p95:.1f} ms)")

    if args.show_sql or args.explain:
        for name, stmts in sql_text.items():
            print(f"\n== SQL of {name}: {len(stmts)} statements")
            for i, (stmt, params) in enumerate(stmts, 1):
                one_line = " ".join(stmt.split())
                print(f"  [{i}] {one_line[:600]}{' …' if len(one_line) > 600 else ''}  {params}")
        if args.explain:
            explain(db_path, sql_text)

    if args.profile:
        profile(app, client, pages, args.profile, args.cprofile)


def explain(db_path: Path, sql_text: dict[str, list[tuple[str, object]]]) -> None:
    """EXPLAIN QUERY PLAN of each statement the pages ran, with the parameters they ran with."""
    with sqlite3.connect(f"file:{db_path}?mode=ro", uri=True) as con:
        for name, stmts in sql_text.items():
            print(f"\n== Query plans of {name}")
            for i, (stmt, params) in enumerate(stmts, 1):
                rows = con.execute("EXPLAIN QUERY PLAN " + stmt, params or ()).fetchall()
                print(f"  [{i}] " + " | ".join(detail for *_ids, detail in rows))


def profile(app, client, pages, n: int, use_cprofile: bool) -> None:
    """Profile n requests of each page: pyinstrument (sampling, if installed) or cProfile."""
    try:
        if use_cprofile:
            raise ImportError
        from pyinstrument import Profiler
    except ImportError:
        Profiler = None
    for name, url in pages.items():
        print(f"\n== {'pyinstrument' if Profiler else 'cProfile'} of {n} requests: {name}")
        if Profiler:
            profiler = Profiler(interval=0.0005)
            profiler.start()
            for _ in range(n):
                client.get(url)
            profiler.stop()
            print(profiler.output_text(unicode=True, color=False, show_all=False, short_mode=False))
            continue
        profiler = cProfile.Profile()
        profiler.enable()
        for _ in range(n):
            client.get(url)
        profiler.disable()
        out = io.StringIO()
        stats = pstats.Stats(profiler, stream=out).strip_dirs()
        stats.sort_stats("cumulative").print_stats(30)
        stats.sort_stats("tottime").print_stats(20)
        print(out.getvalue())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", type=Path, default=DEFAULT_DB, help=f"SQLite file (default {DEFAULT_DB.relative_to(ROOT)})")
    parser.add_argument("--rebuild", action="store_true", help="build a fresh database even if one exists")
    parser.add_argument("--notes", type=int, default=50_000)
    parser.add_argument("--replies", type=int, default=500_000)
    parser.add_argument("--runs", type=int, default=200, help="timed requests per page kind")
    parser.add_argument("--warmup", type=int, default=10, help="untimed rounds before timing")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--analyze", action="store_true", help="run ANALYZE after building (the app never does)")
    parser.add_argument("--build-only", action="store_true")
    parser.add_argument("--show-sql", action="store_true", help="print each page's SQL statements")
    parser.add_argument("--explain", action="store_true", help="print EXPLAIN QUERY PLAN of each page's SQL")
    parser.add_argument("--as", dest="as_", choices=("member", "moderator"), default="member",
                        help="sign in as an EU member (default) or an EU moderator (more links and forms per reply)")
    parser.add_argument("--no-gc-freeze", dest="gc_freeze", action="store_false",
                        help="do not call gc.freeze() after warm-up (wsgi.py does, after create_app())")
    parser.add_argument("--only", action="append", choices=("thread", "channel", "dashboard"),
                        help="time only this page kind (repeatable)")
    parser.add_argument("--profile", type=int, default=0, metavar="N", help="profile N requests of each page (pyinstrument if installed, else cProfile)")
    parser.add_argument("--cprofile", action="store_true", help="profile with cProfile even if pyinstrument is there")
    args = parser.parse_args(argv)
    if args.replies < THREAD_REPLIES + args.notes or args.notes < 100:
        parser.error(f"need at least 100 notes and --replies >= {THREAD_REPLIES} + --notes")
    db_path = args.db.resolve()
    meta = None if args.rebuild else existing_build(db_path, args)
    if meta is None:
        print(f"Building {db_path} ({args.notes} notes, {args.replies} replies, seed {args.seed}) …", flush=True)
        meta = build(db_path, args)
        if not args.build_only:
            # Measure in a fresh interpreter: the build's imports and leftovers would make every full
            # garbage collection, and so the timings' tail, costlier than in a web worker.
            argv_again = [a for a in (argv if argv is not None else sys.argv[1:]) if a != "--rebuild"]
            sys.stdout.flush()
            os.execv(sys.executable, [sys.executable, str(Path(__file__).resolve()), *argv_again])
    else:
        print(f"Reusing {db_path} (built {meta['built_at']} in {meta['build_seconds']} s; --rebuild to force)")
    print("Data:", json.dumps(meta["stats"], ensure_ascii=False))
    if not args.build_only:
        measure(db_path, meta, args)


if __name__ == "__main__":
    main()
