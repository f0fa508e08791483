"""Search benchmark: the portal's Whoosh search against SQLite FTS5 (trigram), in the same run.

Usage (from the repository root, with the project's virtualenv). A full run takes 20-40 minutes
(building 100,000 notes and their Whoosh index alone takes 6-7), so start it in the background:

    nohup .venv/bin/python bench/search.py --compare-whoosh > bench/out/search.log 2>&1 &

    .venv/bin/python bench/search.py                     # build what is missing, then measure and report
    .venv/bin/python bench/search.py --rebuild           # build the databases and indexes afresh
    .venv/bin/python bench/search.py --notes 20000       # a smaller synthetic corpus (its own files)
    .venv/bin/python bench/search.py --compare-whoosh    # also measure with search on Whoosh's own
                                                         # matchers (engine="whoosh": no numpy arrays)
    .venv/bin/python bench/search.py --changes-only      # only the change latency (wall and CPU), printed
    .venv/bin/python bench/search.py --plan-b            # also time FTS5 over the portal's own tokens
    .venv/bin/python bench/search.py --reindex           # rebuild the indexes with the current code
    .venv/bin/python bench/search.py --profile           # also profile slow queries and edits (cProfile)
    .venv/bin/python bench/search.py --report-only       # print the tables of the last runs again

What it builds. Each step runs in a fresh interpreter and is skipped when its output exists:
  * search-100k.sqlite3: the schema through Alembic (portal.db.migrate) and content/, 8
    organisations, 40 users and 6 channels through the services, then --notes synthetic notes
    bulk-inserted with SQLAlchemy Core (as bench/pages.py does; its helpers are imported): a fixed
    seed, 30 % Japanese, ~150 English words (~400 Japanese characters) each, made from sentence
    templates over Zipf-weighted pools of regulatory terms, so there are very common words
    ("platform"), rare ones (~400 notes) and very rare ones (~35 notes) in both languages.
    Kinds, case statuses, question states, topics, citations and dates (2023-2025) vary.
  * search-corpus.sqlite3: the same world with the shared real corpus (../shared/corpus:
    eu_acts_en.jsonl and jp_legal_gov_ja.jsonl, 8,200 documents) inserted as notes.
  * For each: the Whoosh index through the portal's own code path (services.search.rebuild:
    expected_documents -> note_document -> SearchIndex writer), timed; notes/s and size on disk.
    The time to build the documents alone (SQL + note_document, no Whoosh) is measured too.
  * For each: an SQLite FTS5 table (tokenize='trigram') over the same notes' title and body (the
    same plain text the index gets), in the same database file; timed, with its size.
  * With --plan-b (experimental): an FTS5 table (unicode61) over the portal's own analyzer output
    (stems and CJK bigrams), to see what C-speed matching with the portal's semantics would give.

What it measures, in a fresh interpreter, on working copies of the built files (every run
starts from the same index and database):
  * A fixed set of queries (words, two words, phrases, Japanese of two and more characters,
    mixed, OR/NOT, filters, newest-first) through services.search.search(): parse, the
    permission filter, Whoosh with facets and snippets, hydration from the database, as
    /search does. The reader is an EU member who may see 4 of the 6 channels. Each query runs
    --rounds times (in a shuffled order per round, after a warm-up round).
  * The same queries on FTS5, translated to MATCH syntax with the same permission restriction
    (channel_id IN (...)), the same filters in SQL and snippet(); the top 20 by bm25 (the
    baseline), then also the total count and the facet counts (reported separately).
  * One note's change: a note edited through services.notes.edit_note() (a new word in its body)
    and committed, which applies the outbox to the index (sync) in the commit; then searching for
    the word until it is found. Reported: commit -> visible p50/p95, and inside it the DB commit,
    sync (writer open, delete+add, Whoosh commit) and the searcher refresh. Also for new notes.
The first pass over the queries (a fresh process: nothing cached yet) is reported as "cold".
With --compare-whoosh the same measurements run again in another fresh interpreter with
SearchIndex.search forced onto Whoosh's matchers (engine="whoosh"), and the answers are compared.

Everything is written to bench/out/ (git-ignored): the databases, indexes, results JSON, the
report (search-report.txt) and profiles.
"""
from __future__ import annotations

import argparse
import contextlib
import functools
import gc
import hashlib
import html
import json
import os
import platform
import random
import re
import shutil
import sqlite3
import statistics
import subprocess
import sys
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
if str(ROOT / "bench") not in sys.path:
    sys.path.append(str(ROOT / "bench"))

import pages  # noqa: E402  (bench/pages.py: world constants, pick, bulk, percentile, progress)
from sqlalchemy import select  # noqa: E402

from portal import create_app  # noqa: E402
from portal.db import get_session, migrate  # noqa: E402
from portal.models import (  # noqa: E402
    Article,
    CaseMilestone,
    Channel,
    Note,
    NoteArticle,
    NoteRevision,
    Topic,
    User,
    note_topics,
)
from portal.search import query as query_language  # noqa: E402
from portal.search.index import SearchIndex  # noqa: E402
from portal.services import accounts, channels, content  # noqa: E402
from portal.services import notes as notes_service  # noqa: E402
from portal.services import search as search_service  # noqa: E402

OUT = ROOT / "bench" / "out"
CORPUS_DIR = (ROOT / ".." / "shared" / "corpus").resolve()
CORPUS_FILES = ("eu_acts_en.jsonl", "jp_legal_gov_ja.jsonl")
PASSWORD = pages.PASSWORD
PERIOD = (datetime(2023, 1, 1), datetime(2025, 12, 31))
TODAY = date(2026, 1, 15)  # fixed, so date filters select the same notes in every run
JA_SHARE = 0.30

# --------------------------------------------------------------------------------------------
# Text: English and Japanese regulatory vocabulary, Zipf-weighted (first = most frequent).
# --------------------------------------------------------------------------------------------

EN_NOUNS = """platform|gatekeeper|users|data|provider|service|obligations|compliance|app store|developers|
transparency|access|market|competition|interoperability|consumers|information|content|measures|
assessment|report|guidelines|risk|search engine|operating system|browser|payment|fees|advertising|
ranking|terms and conditions|complaints|investigation|proceedings|decision|deadline|consultation|
notice|illegal content|default settings|choice screen|in-app purchases|alternative payment systems|
anti-steering provisions|sideloading|data portability|personal data|cross-border transfers|
age verification|minors|dark patterns|systemic risk assessment|trusted flaggers|
notice and action mechanism|content moderation|researcher access|ad repository|business users|
end users|self-preferencing|tying|online marketplace|marketplace sellers|smartphone|mobile ecosystem|
browser engine|voice assistant|cloud services|messaging services|encryption|security|integrity|
audit|auditor|remedies|fines|periodic penalty payments|market test|compliance report|workshop|
specification|API|documentation|commitments|designation|thresholds|turnover|monthly active users|
appeal|court|judgment|rebuttal|evidence|request for information|hearing|statement of objections|
retaliation|contractual terms|commission rate|revenue share|link-outs|entitlements|review process|
app review|security review|malware|fraud|scams|phishing|disinformation|elections|civic discourse|
public health|gender-based violence|protection of minors|parental controls|recommendation feed|
profiling|consent|legitimate interest|data minimisation|retention|anonymisation|pseudonymisation|
data protection officer|supervisory authority|one-stop-shop|cooperation|coordinator|
digital services coordinator|enforcement|sanctions|guidance|FAQ|templates|benchmarks|metrics|
key performance indicators|logs|complaint handling|out-of-court dispute settlement|
statement of reasons|suspension|termination|delisting|demotion|visibility|traffic|clicks|
conversions|attribution|auction|bidding|ad tech|identifiers|tracking|third-party cookies|
privacy sandbox|default browser|search choice|pre-installed apps|uninstalling|updates|
operating system features|hardware|connected devices|wearables|smart TV|car systems|""".replace("\n", "").strip("|").split("|")

EN_ADJECTIVES = ("new additional mandatory proportionate effective technical detailed preliminary revised "
                 "independent third-party alternative specific annual confidential public non-discriminatory "
                 "fair reasonable transparent voluntary interim final relevant existing current proposed "
                 "updated clear consistent binding").split()

EN_SUBJECTS = [
    "The gatekeeper", "The platform operator", "Our preliminary assessment", "The Commission", "The JFTC",
    "The designated provider", "The provider", "The working group", "The draft guidance", "The auditor",
    "The compliance function", "The national coordinator", "Our case team", "The browser vendor",
    "The search engine", "The marketplace", "The complainant", "The ministry", "METI", "The MIC",
    "The PPC", "The EDPB", "DG CNECT", "DG COMP", "The Board", "Apple", "Google", "Meta", "Amazon",
    "Microsoft", "ByteDance", "LINE Yahoo", "Rakuten",
]
EN_VERBS = [
    "has submitted new information on", "appears to restrict", "is expected to publish details of",
    "clarified its position on", "raised concerns about", "will review", "has not yet addressed",
    "proposed changes to", "requested more time to document", "confirmed the timeline for",
    "asked for a technical meeting on", "published a consultation on", "narrowed the scope of",
    "questioned the necessity of", "updated its approach to", "is still assessing", "objected to",
    "welcomed the clarification on", "has extended", "is testing",
]
EN_DOCS = ["report", "submission", "reply", "letter", "presentation", "position paper", "compliance report",
           "risk assessment", "audit report", "guidance", "working paper"]
EN_TAILS = [
    "under DSA Art. 34", "before the end of the quarter", "in both jurisdictions", "following the last exchange",
    "as discussed at the joint meeting", "for users in Japan", "in the EEA", "under Art. 6(7) DMA",
    "in the second review cycle", "with reference to the MSCA guidelines", "pending the outcome of the market test",
    "under Article 5 of the MSCA", "in line with GDPR Art. 20", "under the TFDPA", "", "", "", "", "", "",
]
# In ~25 % of English notes one of these (~400 notes each); in ~3 %, one of the very rare (~35 each).
EN_RARE = ("geoblocking webview sherlocking escrow watermarking sandboxing telemetry geofencing clickwrap "
           "deepfakes biometrics emulators notarisation jailbreaking superapps tokenisation interstitials "
           "paywalls fingerprinting scraping chatbots livestreaming influencers dropshipping counterfeits "
           "chargebacks refunds subscriptions bundling preinstallation wallets passkeys throttling crawling "
           "captchas shadowbanning demonetisation microtransactions lootboxes geolocation").split()
EN_VERY_RARE = ("homoglyphs typosquatting clickjacking steganography doxxing swatting brigading astroturfing "
                "catfishing smishing vishing cryptojacking ransomware botnets keyloggers rootkits honeypots "
                "darknet spoofing sextortion grooming impersonation malvertising adware stalkerware spyware "
                "sockpuppets hashtags memes voiceprints lipsync avatars metaverse holograms wearables "
                "exoskeletons drones robotaxis chiplets firmware bootloaders enclaves attestation "
                "tokenomics stablecoins airdrops rugpulls wash-trading frontrunning sandwiching oracles "
                "custody staking mixers tumblers escheat geoarbitrage").split()

JA_NOUNS = """事業者|利用者|情報|規制|対応|措置|透明性|個人情報|削除|違法コンテンツ|手数料|決済|競争|
アプリストア|スマートフォン|開発者|義務|報告書|指針|相互運用性|検索エンジン|ブラウザ|広告|苦情処理|年齢確認|
初期設定|選択画面|競争促進|代替決済|越境移転|安全管理措置|漏えい|本人同意|第三者提供|利用規約|表示順位|
推薦システム|偽情報|誹謗中傷|権利侵害|発信者情報|開示請求|送信防止措置|仮名加工情報|匿名加工情報|監督|
執行|調査|命令|勧告|意見募集|市場|データ|取引|契約条件|審査|基準|体制|運用|評価|監査|是正|罰則|課徴金|
指定|届出|公表|協議|連携|未成年者|保護者|暗号化|認証|セキュリティ|音声アシスタント|クラウド|生成AI|
人工知能|学習データ|著作権|リスク評価|影響評価|プライバシー|同意取得|アカウント|アプリ内課金|外部リンク|
サイドローディング|デフォルト設定|プリインストール|オンラインモール|出店者|取引条件|紛争解決|相談窓口|
モニタリング|定期報告|自己優遇|抱き合わせ|データポータビリティ|APIアクセス|技術仕様|互換性|""".replace("\n", "").strip("|").split("|")
JA_SUBJECTS = ["ゲートキーパーは", "当該事業者は", "公正取引委員会は", "欧州委員会は", "作業部会は",
               "プラットフォーム事業者は", "指定事業者は", "総務省は", "経済産業省は", "個人情報保護委員会は",
               "申告者は", "Appleは", "Googleは", "Metaは", "Amazonは", "当局は"]
JA_TIMES = ["今回、", "前回の会合を踏まえ、", "現時点では、", "第二回の見直しに向けて、", "市場テストの結果を待って、",
            "日EU間の比較として、", "スマホ新法第7条に基づき、", "DSA第34条に関連して、", "DMA第6条第7項との関係で、",
            "", "", "", ""]
JA_VERBS = ["追加の説明を求めている。", "懸念を表明した。", "来月までに回答する予定である。",
            "ガイドライン案を公表した。", "引き続き検討を行っている。", "意見募集を実施した。",
            "報告書を提出した。", "技術的な会合の開催を提案した。", "スケジュールを確認した。",
            "見解を示した。", "是正を求めた。", "資料の提出を要請した。"]
JA_RARE = ("ウェブビュー ジェイルブレイク エスクロー 電子透かし ディープフェイク ルートボックス ジオブロッキング "
           "生体認証 サンドボックス ミニアプリ 定期購入 返金 チャージバック 模倣品 ライブ配信 インフルエンサー "
           "ステルスマーケティング ダークパターン 課金誘導 位置情報 端末識別子 閲覧履歴 クッキー 指紋認証 "
           "顔認証 迷惑メール なりすまし 不正アクセス 炎上 誤情報").split()
JA_VERY_RARE = ("フィッシング詐欺 ランサムウェア ボットネット 暗号資産 仮想通貨交換業 電子署名 量子暗号 秘密分散 "
                "差分プライバシー 連合学習 合成データ 透かし検出 音声合成 顔画像 闇バイト 特殊詐欺 投資詐欺 "
                "ロマンス詐欺 なりすまし広告 架空請求").split()
JA_TITLE_TAILS = ["に関する質問", "の進捗状況", "についての予備的見解", "に関する会合メモ", "の比較", "に関する確認事項",
                  "の今後の予定", "への対応", "に関する論点整理"]


def zipf_weights(n: int, s: float = 1.0) -> list[float]:
    acc, out = 0.0, []
    for rank in range(1, n + 1):
        acc += 1 / rank ** s
        out.append(acc)
    return out


MONTHS = "January February March April May June July August September October November December".split()
EN_CUM = zipf_weights(len(EN_NOUNS))
JA_CUM = zipf_weights(len(JA_NOUNS))


class Writer:
    """Synthetic note text from the pools above; one instance per seeded random generator."""

    def __init__(self, rng: random.Random):
        self.rng = rng

    def en_noun(self) -> str:
        return self.rng.choices(EN_NOUNS, cum_weights=EN_CUM)[0]

    def ja_noun(self) -> str:
        return self.rng.choices(JA_NOUNS, cum_weights=JA_CUM)[0]

    def en_sentence(self) -> str:
        r, c = self.rng, self.rng.choice
        tail = c(EN_TAILS)
        tail = f" {tail}" if tail else ""
        form = r.randrange(6)
        if form == 0:
            s = f"{c(EN_SUBJECTS)} {c(EN_VERBS)} the {c(EN_ADJECTIVES)} {self.en_noun()} of {self.en_noun()}{tail}."
        elif form == 1:
            s = f"{c(EN_SUBJECTS)} {c(EN_VERBS)} {self.en_noun()} for {self.en_noun()} and {self.en_noun()}{tail}."
        elif form == 2:
            subject = c(EN_SUBJECTS)
            subject = subject[0].lower() + subject[1:] if subject.startswith("The ") or subject.startswith("Our ") else subject
            s = f"In its {c(EN_ADJECTIVES)} {c(EN_DOCS)}, {subject} {c(EN_VERBS)} {self.en_noun()}{tail}."
        elif form == 3:
            s = (f"We expect the {c(EN_ADJECTIVES)} {self.en_noun()} to affect {self.en_noun()} and "
                 f"{self.en_noun()} in the coming months.")
        elif form == 4:
            s = f"The {self.en_noun()} remains {c(EN_ADJECTIVES)} with regard to {self.en_noun()}{tail}."
        else:
            s = (f"{c(EN_SUBJECTS)} noted that {self.en_noun()} and {self.en_noun()} should be treated as "
                 f"{c(EN_ADJECTIVES)} {self.en_noun()}.")
        if r.random() < 0.12:
            # A long tail of reference numbers and dates, as real notes have.
            s = s[:-1] + f" (ref. {r.randint(2019, 2025)}/{r.randint(1, 9999):04d}, {r.randint(1, 28)} {c(MONTHS)})."
        return s

    def ja_sentence(self) -> str:
        r, c = self.rng, self.rng.choice
        form = r.randrange(4)
        if form == 0:
            return f"{c(JA_TIMES)}{c(JA_SUBJECTS)}、{self.ja_noun()}の{self.ja_noun()}について{c(JA_VERBS)}"
        if form == 1:
            return (f"{c(JA_SUBJECTS)[:-1]}によると、{self.ja_noun()}に関する{self.ja_noun()}は"
                    f"{self.ja_noun()}に影響を与える可能性がある。")
        if form == 2:
            return f"{self.ja_noun()}及び{self.ja_noun()}の{self.ja_noun()}については、{c(JA_SUBJECTS)}{c(JA_VERBS)}"
        return (f"{r.randint(2019, 2025)}年{r.randint(1, 12)}月{r.randint(1, 28)}日の会合で、"
                f"{self.ja_noun()}における{self.ja_noun()}の在り方を確認した。")

    def note(self, lang: str) -> tuple[str, str, str]:
        """(title, markdown, html) of one note: 2-3 paragraphs, sometimes a list and a summary label."""
        r = self.rng
        sentence = self.ja_sentence if lang == "ja" else self.en_sentence
        joiner = "" if lang == "ja" else " "
        paragraphs = [[sentence() for _ in range(r.randint(3, 4))] for _ in range(r.randint(2, 3))]
        if lang == "en":
            if r.random() < 0.25:
                paragraphs[-1].append(f"{r.choice(EN_SUBJECTS)} also mentioned {r.choice(EN_RARE)} in this context.")
            if r.random() < 0.03:
                paragraphs[-1].append(f"A separate point concerned {r.choice(EN_VERY_RARE)}.")
        else:
            if r.random() < 0.25:
                paragraphs[-1].append(f"また、{r.choice(JA_RARE)}についても言及があった。")
            if r.random() < 0.03:
                paragraphs[-1].append(f"別途、{r.choice(JA_VERY_RARE)}に関する論点も示された。")
        items = [sentence() for _ in range(3)] if r.random() < 0.4 else []
        label = ("要旨：" if lang == "ja" else "Summary:") if r.random() < 0.4 else ""
        md_parts, html_parts = [], []
        for k, paragraph in enumerate(paragraphs):
            text = joiner.join(paragraph)
            if k == 0 and label:
                md_parts.append(f"**{label}** {text}")
                html_parts.append(f"<p><strong>{html.escape(label)}</strong> {html.escape(text)}</p>")
            else:
                md_parts.append(text)
                html_parts.append(f"<p>{html.escape(text)}</p>")
            if k == 0 and items:
                md_parts.append("\n".join(f"- {item}" for item in items))
                html_parts.append("<ul>\n" + "\n".join(f"<li>{html.escape(item)}</li>" for item in items) + "\n</ul>")
        if lang == "ja":
            title = f"{self.ja_noun()}の{self.ja_noun()}{r.choice(JA_TITLE_TAILS)}"
        else:
            head = r.choice(pages.EN_TITLE_HEADS)
            tail = r.choice(pages.EN_TITLE_TAILS)
            title = f"{head} {self.en_noun()} and {self.en_noun()}" + (f" {tail}" if tail else "")
        return title, "\n\n".join(md_parts), "\n".join(html_parts)


# --------------------------------------------------------------------------------------------
# Datasets and files
# --------------------------------------------------------------------------------------------

@dataclass
class Dataset:
    name: str  # "synthetic" or "corpus"
    db: Path
    index: Path

    @property
    def meta_path(self) -> Path:
        return self.db.with_name(self.db.name + ".json")

    def meta(self) -> dict:
        return json.loads(self.meta_path.read_text()) if self.meta_path.exists() else {}

    def save_meta(self, meta: dict) -> None:
        self.meta_path.write_text(json.dumps(meta, indent=2, ensure_ascii=False))

    def work(self) -> Dataset:
        """Working copies for a measurement run: every run starts from the same files."""
        return Dataset(self.name, self.db.with_name(self.db.stem + ".work.sqlite3"),
                       self.index.with_name(self.index.name + ".work"))


def datasets(args) -> dict[str, Dataset]:
    suffix = "100k" if args.notes == 100_000 else f"{args.notes}"
    return {
        "synthetic": Dataset("synthetic", OUT / f"search-{suffix}.sqlite3", OUT / f"search-{suffix}.index"),
        "corpus": Dataset("corpus", OUT / "search-corpus.sqlite3", OUT / "search-corpus.index"),
    }


def make_app(ds: Dataset):
    return create_app({
        "INSTANCE_PATH": str(OUT / "instance"),
        "DATABASE_URL": f"sqlite:///{ds.db}",
        "SECRET_KEY": "bench-secret-key",
        "WTF_CSRF_ENABLED": False,
        "SEARCH_DIR": str(ds.index),
        "BASE_URL": "http://portal.bench",
    })


def remove_db(path: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def dir_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def progress(message: str, started: float) -> None:
    pages.progress(message, started)


# --------------------------------------------------------------------------------------------
# Build: the world (organisations, users, channels), then notes
# --------------------------------------------------------------------------------------------

def build_world(session, rng: random.Random) -> dict:
    """Organisations, users and channels as bench/pages.py makes them; the reader sees 4 of 6 channels."""
    shared_hash = accounts.hash_password(PASSWORD)
    orgs = [accounts.create_organisation(session, slug=s, name=n, side=side) for s, n, side in pages.ORGS]
    users: list[User] = []
    for o_index, org in enumerate(orgs):
        for u in range(5):
            first = pages.FIRST[org.side][(o_index * 5 + u) % 10]
            last = pages.LAST[org.side][(o_index * 3 + u * 7) % 10]
            role = "admin" if u == 0 and o_index in (0, 4) else ("moderator" if u == 1 else "member")
            user = accounts.create_user(
                session, email=f"{first}.{last}.{u}@{org.slug}.example.{org.side}".lower(),
                name=f"{first} {last}", organisation=org, role=role,
                lang="ja" if org.side == "jp" and u % 2 == 0 else "en")
            user.password_hash = shared_hash
            users.append(user)
    eu_users = [u for u in users if u.side == "eu"]
    jp_users = [u for u in users if u.side == "jp"]
    chans: list[Channel] = []
    for slug, name_en, name_ja, visibility, _share, _archived in pages.CHANNELS:
        chans.append(channels.create_channel(session, {
            "slug": slug, "name_en": name_en, "name_ja": name_ja, "visibility": visibility,
            "description_en": f"Exchanges on {name_en.lower()} between the EU and Japan.",
            "description_ja": f"{name_ja}に関する日EU間の情報交換。",
        }, actor=None))
    private = chans[4]
    members = rng.sample(eu_users, 5) + rng.sample(jp_users, 5)
    for i, member in enumerate(members):
        channels.add_member(session, private, member, is_moderator=(i == 5), actor=None)
    session.commit()
    # The reader: an EU member (not a moderator) outside the private channel, so the permission
    # filter leaves out two channels (Japan coordination and the private one).
    reader = next(u for u in eu_users if u.role == "member" and u not in members)
    eligible = {"joint": users, "eu": eu_users, "jp": jp_users, "private": members}
    return {
        "channel_ids": [c.id for c in chans],
        "channel_users": [[u.id for u in eligible[c.visibility]] for c in chans],
        "user_side": {u.id: u.side for u in users},
        "topics": [(t.id, t.slug) for t in session.scalars(select(Topic).order_by(Topic.id))],
        "articles": [(a.id, f"{a.act.short} Art. {a.number}") for a in session.scalars(select(Article))],
        "reader_email": reader.email,
    }


def note_rows(rng: random.Random, world: dict, specs):
    """Rows for notes, revisions, topics, citations and milestones from (title, md, html, lang, extra) specs."""
    channel_ids, channel_users, user_side = world["channel_ids"], world["channel_users"], world["user_side"]
    shares = [(i, c[4]) for i, c in enumerate(pages.CHANNELS)]
    start, end = PERIOD
    span = (end - start).total_seconds()
    out = {"notes": [], "revisions": [], "topics": [], "citations": [], "milestones": []}
    stats = Counter()
    for note_id, (title, md, body_html, lang, external_id) in enumerate(specs, start=1):
        t0 = (start + timedelta(seconds=span * note_id / (len(specs) + 1) + rng.uniform(0, 600))).replace(microsecond=0)
        ci = pages.pick(rng, shares)
        pool = channel_users[ci]
        wanted_side = ("jp" if rng.random() < 0.85 else "eu") if lang == "ja" else ("eu" if rng.random() < 0.75 else "jp")
        candidates = [u for u in pool if user_side[u] == wanted_side] or pool
        author = rng.choice(candidates)
        kind = pages.pick(rng, pages.KIND_WEIGHTS)
        row = dict(
            id=note_id, external_id=external_id, channel_id=channel_ids[ci], author_id=author, kind=kind,
            title=title[:300], body=md, body_html=body_html, lang=lang,
            marking=pages.pick(rng, (("public", 0.2), ("limited", 0.65), ("sensitive", 0.15))),
            case_reference="", platforms="", legal_basis="", case_status=None, addressed_side=None,
            answer_by=None, question_state=None, declined_grounds="", accepted_reply_id=None, revision=1,
            reply_count=0, created_at=t0, updated_at=t0, last_activity_at=t0, deleted_at=None,
            deleted_by_id=None,
        )
        chosen_topics = rng.sample(world["topics"], rng.choice((1, 1, 2, 2, 3)))
        chosen_articles = rng.sample(world["articles"], rng.choice((0, 1, 1, 2, 3)))
        citations = [(a_id, label, rng.choice(("", "", "", "(1)", "(2)", "(7)"))) for a_id, label in chosen_articles]
        milestones = []
        if kind == "case":
            row["case_reference"] = f"{rng.choice(('DMA', 'AT', 'DSA', 'JFTC'))}.{rng.randint(10000, 99999)}"
            row["platforms"] = ", ".join(rng.sample(pages.PLATFORMS, rng.randint(1, 2)))
            row["legal_basis"] = citations[0][1] + citations[0][2] if citations else ""
            row["case_status"] = pages.pick(rng, (("open", 0.25), ("investigating", 0.35), ("preliminary_findings", 0.15),
                                                  ("decision_adopted", 0.1), ("closed", 0.15)))
            labels = pages.CASE_LABELS_JA if lang == "ja" else pages.CASE_LABELS_EN
            for _ in range(rng.choice((0, 1, 2))):
                milestones.append((t0.date() + timedelta(days=rng.randint(10, 420)), rng.choice(labels)))
            milestones.sort()
        elif kind == "question":
            row["addressed_side"] = "jp" if user_side[author] == "eu" else "eu"
            row["answer_by"] = t0.date() + timedelta(days=rng.randint(14, 60))
            recent = (end - t0).days < 120
            row["question_state"] = pages.pick(rng, (("open", 0.6), ("answered", 0.3), ("declined", 0.1)) if recent
                                               else (("open", 0.15), ("answered", 0.7), ("declined", 0.15)))
            if row["question_state"] == "declined":
                row["declined_grounds"] = "The matter is under investigation and cannot be discussed."
        if external_id is None and rng.random() < 0.003:  # a few soft deletions (synthetic notes only)
            row["deleted_at"], row["deleted_by_id"] = t0 + timedelta(days=1), author
            stats["deleted"] += 1
        stats[kind] += 1
        stats[f"lang {lang}"] += 1
        stats[f"channel {pages.CHANNELS[ci][0]}"] += 1
        out["notes"].append(row)
        out["revisions"].append(dict(
            note_id=note_id, number=1, title=row["title"], body=md, editor_id=author, created_at=t0,
            attributes={
                "lang": lang, "marking": row["marking"], "topics": sorted(slug for _id, slug in chosen_topics),
                "articles": [label + pin for _id, label, pin in citations],
                "case_reference": row["case_reference"], "platforms": row["platforms"],
                "legal_basis": row["legal_basis"], "case_status": row["case_status"],
                "answer_by": row["answer_by"].isoformat() if row["answer_by"] else None,
                "milestones": [f"{d.isoformat()} {label}" for d, label in milestones],
            }))
        out["topics"].extend({"note_id": note_id, "topic_id": t_id} for t_id, _slug in chosen_topics)
        out["citations"].extend({"note_id": note_id, "article_id": a_id, "pinpoint": pin} for a_id, _l, pin in citations)
        out["milestones"].extend({"note_id": note_id, "due_on": d, "label": label} for d, label in milestones)
    return out, stats


def synthetic_specs(rng: random.Random, n: int):
    writer = Writer(rng)
    for _ in range(n):
        lang = "ja" if rng.random() < JA_SHARE else "en"
        title, md, body_html = writer.note(lang)
        yield title, md, body_html, lang, None


def corpus_specs():
    for name in CORPUS_FILES:
        with open(CORPUS_DIR / name, encoding="utf-8") as handle:
            for line in handle:
                if not line.strip():
                    continue
                record = json.loads(line)
                paragraphs = [p.strip() for p in record["body"].split("\n") if p.strip()] or [record["title"]]
                md = "\n\n".join(paragraphs)
                body_html = "\n".join(f"<p>{html.escape(p)}</p>" for p in paragraphs)
                yield record["title"], md, body_html, record["lang"], str(record["id"])[:200]


def stage_build_db(ds: Dataset, args) -> None:
    started = time.perf_counter()
    rng = random.Random(args.seed)
    remove_db(ds.db)
    shutil.rmtree(ds.index, ignore_errors=True)
    ds.db.parent.mkdir(parents=True, exist_ok=True)
    app = make_app(ds)
    with app.app_context():
        eng = app.extensions["db_engine"]
        migrate(eng)
        session = get_session()
        content.load_content(session)
        session.commit()
        world = build_world(session, rng)
        session.close()
        progress("schema, content, organisations, users and channels", started)
        if ds.name == "synthetic":
            specs = list(synthetic_specs(rng, args.notes))
        else:
            specs = list(corpus_specs())
        words = statistics.mean(len(md.split()) for _t, md, _h, lang, _e in specs[:2000] if lang == "en") if any(
            s[3] == "en" for s in specs[:2000]) else 0
        ja_chars = [len(md) for _t, md, _h, lang, _e in specs[:5000] if lang == "ja"]
        progress(f"generated {len(specs)} notes (English ~{words:.0f} words, Japanese ~"
                 f"{statistics.mean(ja_chars) if ja_chars else 0:.0f} characters)", started)
        rows, stats = note_rows(rng, world, specs)
        del specs
        with eng.connect() as conn:
            conn.exec_driver_sql("PRAGMA synchronous=OFF")
            conn.exec_driver_sql("PRAGMA cache_size=-400000")
            for table, key in ((Note.__table__, "notes"), (NoteRevision.__table__, "revisions"),
                               (note_topics, "topics"), (NoteArticle.__table__, "citations"),
                               (CaseMilestone.__table__, "milestones")):
                pages.bulk(conn, table, rows[key])
            conn.commit()
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        progress(f"inserted {len(rows['notes'])} notes with revisions, topics, citations, milestones", started)
        eng.dispose()
    ds.save_meta({
        "dataset": ds.name, "notes": len(rows["notes"]), "seed": args.seed,
        "built_at": datetime.now().isoformat(timespec="seconds"),
        "build_seconds": round(time.perf_counter() - started, 1), "db_bytes": ds.db.stat().st_size,
        "reader_email": world["reader_email"], "stats": dict(stats),
    })


def stage_index(ds: Dataset, args) -> None:
    """The Whoosh index through services.search.rebuild(), timed; first the documents alone."""
    meta = ds.meta()
    shutil.rmtree(ds.index, ignore_errors=True)
    app = make_app(ds)
    if args.index_procs > 1:
        # Not the portal's code path: a multi-process writer, for comparison only.
        @contextlib.contextmanager
        def writer(self, timeout: float = 10.0):
            w = self._ix.writer(timeout=timeout, delay=0.02, procs=args.index_procs, multisegment=True)
            try:
                yield w
            except BaseException:
                w.cancel()
                raise
            w.commit()
        SearchIndex.writer = writer
    with app.app_context():
        index = search_service.index_for(app)
        with app.extensions["db_sessionmaker"]() as session:
            documents = search_service.count_documents(session)
            notes = session.query(Note).filter(Note.deleted_at.is_(None)).count()
            t0 = time.perf_counter()
            built = sum(1 for _ in search_service.expected_documents(session))
            doc_seconds = time.perf_counter() - t0
        print(f"  documents only (SQL + note_document, no Whoosh): {built} in {doc_seconds:.1f} s", flush=True)
        gc.collect()
        with app.extensions["db_sessionmaker"]() as session:
            cpu0, t0 = time.process_time(), time.perf_counter()
            count = search_service.rebuild(session, index)
            seconds, cpu = time.perf_counter() - t0, time.process_time() - cpu0
        segments = len(index._ix._segments())
    size = dir_bytes(ds.index)
    print(f"  rebuild: {count} documents ({notes} notes) in {seconds:.1f} s = {notes / seconds:.0f} notes/s; "
          f"index {size / 1e6:.0f} MB in {segments} segment(s)", flush=True)
    meta["index"] = {
        "documents": count, "expected_documents": documents, "notes": notes, "seconds": round(seconds, 1),
        "cpu_seconds": round(cpu, 1), "notes_per_s": round(notes / seconds, 1),
        "document_build_seconds": round(doc_seconds, 1), "bytes": size, "segments": segments,
        "procs": args.index_procs, "built_at": datetime.now().isoformat(timespec="seconds"),
        "code": code_fingerprint(),
    }
    ds.save_meta(meta)


def stage_fts(ds: Dataset, args) -> None:
    """An FTS5 trigram table over the same notes (title, plain-text body), in the same database file."""
    meta = ds.meta()
    con = sqlite3.connect(ds.db)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("DROP TABLE IF EXISTS notes_fts")
    con.commit()
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    page_size = con.execute("PRAGMA page_size").fetchone()[0]
    before = con.execute("PRAGMA page_count").fetchone()[0] - con.execute("PRAGMA freelist_count").fetchone()[0]
    con.execute("CREATE VIRTUAL TABLE notes_fts USING fts5(title, body, tokenize='trigram')")
    reader = sqlite3.connect(ds.db)
    rows = ((nid, title, search_service.plain_text(body_html)) for nid, title, body_html in
            reader.execute("SELECT id, title, body_html FROM notes WHERE deleted_at IS NULL ORDER BY id"))
    t0 = time.perf_counter()
    con.executemany("INSERT INTO notes_fts(rowid, title, body) VALUES (?, ?, ?)", rows)
    con.commit()
    insert_seconds = time.perf_counter() - t0
    t1 = time.perf_counter()
    con.execute("INSERT INTO notes_fts(notes_fts) VALUES ('optimize')")
    con.commit()
    optimize_seconds = time.perf_counter() - t1
    reader.close()
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    after = con.execute("PRAGMA page_count").fetchone()[0] - con.execute("PRAGMA freelist_count").fetchone()[0]
    notes = con.execute("SELECT count(*) FROM notes_fts").fetchone()[0]
    con.close()
    size = (after - before) * page_size
    print(f"  FTS5 trigram: {notes} notes in {insert_seconds:.1f} s (+ optimize {optimize_seconds:.1f} s), "
          f"{size / 1e6:.0f} MB", flush=True)
    meta["fts"] = {"notes": notes, "seconds": round(insert_seconds, 1), "optimize_seconds": round(optimize_seconds, 1),
                   "notes_per_s": round(notes / insert_seconds, 1), "bytes": size}
    ds.save_meta(meta)


def portal_analyzer():
    from portal.search.index import make_schema
    return make_schema()["body"].analyzer


def analyzed(analyzer, text: str) -> str:
    """Text as the portal's analyzer sees it, tokens joined by spaces: stemmed words and CJK
    bigrams (mode="query": no edge unigrams, which would need two tokens at one position)."""
    return " ".join(token.text for token in analyzer(text, mode="query"))


def stage_fts_tok(ds: Dataset, args) -> None:
    """Plan B (experimental): an FTS5 table over the portal's own tokens, with unicode61 (which
    keeps a bigram, a stem or a number as one token). Same documents as the Whoosh notes."""
    meta = ds.meta()
    app = make_app(ds)
    analyzer = portal_analyzer()
    con = sqlite3.connect(ds.db)
    con.execute("DROP TABLE IF EXISTS notes_tok")
    con.commit()
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    page_size = con.execute("PRAGMA page_size").fetchone()[0]
    before = con.execute("PRAGMA page_count").fetchone()[0] - con.execute("PRAGMA freelist_count").fetchone()[0]
    con.execute("CREATE VIRTUAL TABLE notes_tok USING fts5(title, body, extra, plain UNINDEXED, "
                "tokenize='unicode61 remove_diacritics 0')")
    t0 = time.perf_counter()
    with app.app_context(), app.extensions["db_sessionmaker"]() as session:
        def rows():
            for document in search_service.expected_documents(session):
                if document["type"] != "note":
                    continue
                yield (int(document["note_id"]), analyzed(analyzer, document["title"]),
                       analyzed(analyzer, document["body"]), analyzed(analyzer, document["extra"]), document["body"])
        con.executemany("INSERT INTO notes_tok(rowid, title, body, extra, plain) VALUES (?, ?, ?, ?, ?)", rows())
    con.commit()
    seconds = time.perf_counter() - t0
    con.execute("INSERT INTO notes_tok(notes_tok) VALUES ('optimize')")
    con.commit()
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    after = con.execute("PRAGMA page_count").fetchone()[0] - con.execute("PRAGMA freelist_count").fetchone()[0]
    notes = con.execute("SELECT count(*) FROM notes_tok").fetchone()[0]
    con.close()
    print(f"  plan B, FTS5 over the portal's tokens: {notes} notes in {seconds:.1f} s (documents + analyzer + "
          f"insert), {(after - before) * page_size / 1e6:.0f} MB (incl. the stored plain text)", flush=True)
    meta["fts_tok"] = {"notes": notes, "seconds": round(seconds, 1), "notes_per_s": round(notes / seconds, 1),
                       "bytes": (after - before) * page_size}
    ds.save_meta(meta)


# --------------------------------------------------------------------------------------------
# Queries
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Query:
    category: str
    raw: str
    sort: str = "relevance"

    @property
    def key(self) -> str:
        return self.raw + (" [newest]" if self.sort == "newest" else "")


QUERIES = [
    # Single English words, common and rare.
    Query("en word (common)", "platform"),
    Query("en word (common)", "interoperability"),
    Query("en word (common)", "transparency"),
    Query("en word (common)", "users"),
    Query("en word (rare)", "sideloading"),
    Query("en word (rare)", "geoblocking"),
    Query("en word (rare)", "typosquatting"),
    Query("en word (rare)", "notarisation"),
    # Two words (AND).
    Query("en two words", "app store"),
    Query("en two words", "payment fees"),
    Query("en two words", "browser engine"),
    Query("en two words", "ranking transparency"),
    Query("en two words", "gatekeeper webview"),
    # Phrases.
    Query("en phrase", '"notice and action"'),
    Query("en phrase", '"systemic risk assessment"'),
    Query("en phrase", '"alternative payment systems"'),
    Query("en phrase", '"choice screen"'),
    Query("en phrase", '"app store"'),
    # Japanese: two characters (a single bigram), longer words (phrases of bigrams), rare.
    Query("ja 2 chars", "削除"),
    Query("ja 2 chars", "決済"),
    Query("ja 2 chars", "規制"),
    Query("ja 2 chars", "指定"),
    Query("ja word", "違法コンテンツ"),
    Query("ja word", "競争促進"),
    Query("ja word", "個人情報"),
    Query("ja word", "相互運用性"),
    Query("ja word", "苦情処理"),
    Query("ja word", "ディープフェイク"),
    Query("ja word", "差分プライバシー"),
    # Mixed English and Japanese.
    Query("mixed", "DSA 削除"),
    Query("mixed", "Apple 手数料"),
    Query("mixed", "DMA 相互運用性"),
    # OR and NOT.
    Query("or / not", "sideloading OR jailbreaking"),
    Query("or / not", "payment -fees"),
    # Filters.
    Query("filters", "interoperability kind:case"),
    Query("filters", "fees topic:app-stores"),
    Query("filters", "削除 side:jp"),
    Query("filters", "platform lang:en after:2025-06-01"),
    Query("filters", "kind:question is:open"),
    Query("filters", "choice screen kind:update side:eu"),
    Query("filters", "違法コンテンツ lang:ja after:2024-06-30"),
    Query("filters", 'interoperability article:"DMA Art. 6"'),
    # Newest first.
    Query("newest first", "platform", "newest"),
    Query("newest first", "個人情報", "newest"),
]


def fts_match(text: str) -> str | None:
    """The free text of a portal query in FTS5 MATCH syntax: quoted strings, AND, OR, NOT."""
    positives, negatives, pending_or = [], [], False
    for match in re.finditer(r'(-?)"([^"]*)"?|(\S+)', text):
        negate, phrase, word = match.group(1), match.group(2), match.group(3)
        if word in ("OR", "AND", "NOT"):
            pending_or = word == "OR"
            continue
        if word and word.startswith("-") and len(word) > 1:
            negate, word = "-", word[1:]
        term = (phrase if phrase is not None else word or "").strip()
        if not term:
            continue
        quoted = '"' + term.replace('"', '""') + '"'
        if negate:
            negatives.append(quoted)
        elif pending_or and positives:
            positives[-1] = f"({positives[-1]} OR {quoted})"
        else:
            positives.append(quoted)
        pending_or = False
    if not positives:
        return None
    return " AND ".join(positives) + "".join(f" NOT {n}" for n in negatives)


def fts_filters(parsed, visible: list[int]) -> tuple[str, list]:
    """The portal's filters as SQL on notes n, with the permission restriction."""
    where = [f"n.channel_id IN ({','.join('?' * len(visible))})", "n.deleted_at IS NULL"]
    params: list = list(visible)
    for name, values in parsed.filters.items():
        value = values[0].lower()
        if name == "kind":
            where.append("n.kind = ?")
            params.append(value)
        elif name == "lang":
            where.append("n.lang = ?")
            params.append(value)
        elif name == "topic":
            where.append("EXISTS (SELECT 1 FROM note_topics nt JOIN topics t ON t.id = nt.topic_id "
                         "WHERE nt.note_id = n.id AND t.slug = ?)")
            params.append(value)
        elif name == "side":
            where.append("n.author_id IN (SELECT u.id FROM users u JOIN organisations o "
                         "ON o.id = u.organisation_id WHERE o.side = ?)")
            params.append(value)
        elif name == "is":
            where.append("n.question_state = ?")
            params.append(value)
        elif name == "after":
            where.append("n.created_at >= ?")
            params.append((date.fromisoformat(value) + timedelta(days=1)).isoformat())
        elif name == "before":
            where.append("n.created_at < ?")
            params.append(value)
        elif name == "article":
            act, _, number = values[0].partition(" Art. ")
            where.append("EXISTS (SELECT 1 FROM note_articles na JOIN articles a ON a.id = na.article_id "
                         "JOIN acts ON acts.id = a.act_id WHERE na.note_id = n.id AND acts.short = ? "
                         "AND a.number = ?)")
            params.extend([act, number])
        else:
            raise ValueError(f"no SQL for filter {name}")
    return " AND ".join(where), params


class FtsSearch:
    """The baseline: one query on FTS5 as a search page would run it (one connection, reused)."""

    def __init__(self, db: Path, visible: list[int]):
        self.con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        self.con.execute("PRAGMA cache_size=-200000")
        self.visible = visible

    def statements(self, q: Query):
        parsed = query_language.split(q.raw)
        match = fts_match(parsed.text)
        where, params = fts_filters(parsed, self.visible)
        order = "n.created_at DESC" if q.sort == "newest" else ("rank" if match else "n.created_at DESC")
        if match:
            source = "notes_fts JOIN notes n ON n.id = notes_fts.rowid"
            where = f"notes_fts MATCH ? AND {where}"
            params = [match, *params]
            snippet = "snippet(notes_fts, 1, '<mark>', '</mark>', ' … ', 64)"
        else:
            source = "notes n"
            snippet = "substr(n.body, 1, 240)"
        page = f"SELECT n.id, n.title, {snippet} FROM {source} WHERE {where} ORDER BY {order} LIMIT 20"
        count = f"SELECT count(*) FROM {source} WHERE {where}"
        facets = [
            f"SELECT n.kind, count(*) FROM {source} WHERE {where} GROUP BY n.kind",
            f"SELECT n.channel_id, count(*) FROM {source} WHERE {where} GROUP BY n.channel_id",
            f"SELECT nt.topic_id, count(*) FROM {source} JOIN note_topics nt ON nt.note_id = n.id "
            f"WHERE {where} GROUP BY nt.topic_id",
        ]
        return match, page, count, facets, params

    def run(self, q: Query) -> dict:
        match, page, count, facets, params = self.statements(q)
        t0 = time.perf_counter()
        rows = self.con.execute(page, params).fetchall()
        t1 = time.perf_counter()
        total = self.con.execute(count, params).fetchone()[0]
        t2 = time.perf_counter()
        for statement in facets:
            self.con.execute(statement, params).fetchall()
        t3 = time.perf_counter()
        return {"page": (t1 - t0) * 1000, "count": (t2 - t0) * 1000, "facets": (t3 - t0) * 1000,
                "total": total, "shown": len(rows), "match": match}


class FtsTokSearch(FtsSearch):
    """Plan B: the complete page (top 20 by bm25 with the portal's field boosts, the total, three
    facet counts, and snippets by the portal's own highlighter over the stored text) on notes_tok."""

    def __init__(self, db: Path, visible: list[int]):
        super().__init__(db, visible)
        from whoosh import highlight

        from portal.search.analysis import BigramHighlighter
        self.analyzer = portal_analyzer()
        self.highlight = highlight
        self.merge = BigramHighlighter._merge_matched_tokens
        self.fragmenter = highlight.ContextFragmenter(maxchars=240, surround=60)
        self.formatter = highlight.HtmlFormatter(tagname="mark", between=" … ")
        self.scorer = highlight.BasicFragmentScorer()

    def match(self, text: str) -> tuple[str | None, set[str]]:
        """MATCH over the analyzed text: a word of one token is a term, of several a phrase."""
        positives, negatives, words, pending_or = [], [], set(), False
        for found in re.finditer(r'(-?)"([^"]*)"?|(\S+)', text):
            negate, phrase, word = found.group(1), found.group(2), found.group(3)
            if word in ("OR", "AND", "NOT"):
                pending_or = word == "OR"
                continue
            if word and word.startswith("-") and len(word) > 1:
                negate, word = "-", word[1:]
            tokens = analyzed(self.analyzer, phrase if phrase is not None else word or "").split()
            if not tokens:
                continue
            term = '"' + " ".join(tokens) + '"'
            if negate:
                negatives.append(term)
                continue
            words.update(tokens)
            if pending_or and positives:
                positives[-1] = f"({positives[-1]} OR {term})"
            else:
                positives.append(term)
            pending_or = False
        if not positives:
            return None, words
        return " AND ".join(positives) + "".join(f" NOT {n}" for n in negatives), words

    def snippet(self, text: str, words: set[str]) -> str:
        h = self.highlight
        tokens = self.analyzer(text, positions=True, chars=True, mode="index", removestops=False)
        tokens = self.merge(h.set_matched_filter(tokens, words))
        fragments = h.top_fragments(self.fragmenter.fragment_tokens(text, tokens), 3, self.scorer, h.FIRST)
        return self.formatter.format(fragments) or h.htmlescape(text[:240])

    def run(self, q: Query) -> dict:
        parsed = query_language.split(q.raw)
        match, words = self.match(parsed.text)
        where, params = fts_filters(parsed, self.visible)
        if match:
            source = "notes_tok JOIN notes n ON n.id = notes_tok.rowid"
            where = f"notes_tok MATCH ? AND {where}"
            params = [match, *params]
            order = "n.created_at DESC" if q.sort == "newest" else "bm25(notes_tok, 3.0, 1.0, 2.0)"
            text = "notes_tok.plain"
        else:
            source, order, text = "notes n", "n.created_at DESC", "n.body"
        t0 = time.perf_counter()
        rows = self.con.execute(f"SELECT n.id, {text} FROM {source} WHERE {where} ORDER BY {order} LIMIT 20",
                                params).fetchall()
        total = self.con.execute(f"SELECT count(*) FROM {source} WHERE {where}", params).fetchone()[0]
        for statement in (f"SELECT n.kind, count(*) FROM {source} WHERE {where} GROUP BY n.kind",
                          f"SELECT n.channel_id, count(*) FROM {source} WHERE {where} GROUP BY n.channel_id",
                          f"SELECT nt.topic_id, count(*) FROM {source} JOIN note_topics nt ON nt.note_id = n.id "
                          f"WHERE {where} GROUP BY nt.topic_id"):
            self.con.execute(statement, params).fetchall()
        t1 = time.perf_counter()
        snippets = [self.snippet(body or "", words) for _id, body in rows]
        t2 = time.perf_counter()
        return {"page": (t2 - t0) * 1000, "sql": (t1 - t0) * 1000, "total": total, "match": match,
                "ids": [r[0] for r in rows], "snippet": snippets[0][:160] if snippets else ""}


# --------------------------------------------------------------------------------------------
# Measurement
# --------------------------------------------------------------------------------------------

def percentile(values: list[float], q: float) -> float:
    return pages.percentile(sorted(values), q)


class Probe:
    """Timers around the index's writing and refreshing, for the change-latency breakdown."""

    def __init__(self):
        self.times: dict[str, float] = defaultdict(float)
        self.installed = False

    def add(self, name: str, seconds: float) -> None:
        self.times[name] += seconds * 1000

    def reset(self) -> None:
        self.times = defaultdict(float)

    def install(self) -> None:
        if self.installed:
            return
        self.installed = True
        probe = self
        original_sync, original_apply = search_service.sync, search_service._apply
        original_writer, original_searcher = SearchIndex.writer, SearchIndex.searcher

        def sync(app, **kwargs):
            t0 = time.perf_counter()
            try:
                return original_sync(app, **kwargs)
            finally:
                probe.add("sync", time.perf_counter() - t0)

        def apply(*args, **kwargs):
            t0 = time.perf_counter()
            try:
                return original_apply(*args, **kwargs)
            finally:
                probe.add("apply", time.perf_counter() - t0)

        depth = [0]

        def timed(name, fn):
            # Outermost call only: update_document's own add_document is part of update_document.
            def wrapper(*args, **kwargs):
                if depth[0]:
                    return fn(*args, **kwargs)
                depth[0] += 1
                t0 = time.perf_counter()
                try:
                    return fn(*args, **kwargs)
                finally:
                    depth[0] -= 1
                    probe.add(name, time.perf_counter() - t0)
            return wrapper

        @contextlib.contextmanager
        def writer(self, timeout: float = 10.0, merge: bool = True):
            t0 = time.perf_counter()
            manager = original_writer(self, timeout, merge)
            w = manager.__enter__()
            probe.add("writer open", time.perf_counter() - t0)
            for name in ("update_document", "add_document", "delete_by_term", "delete_document"):
                setattr(w, name, timed(f"writer.{name}", getattr(w, name)))
            try:
                yield w
            except BaseException:
                if not manager.__exit__(*sys.exc_info()):
                    raise
                return
            t1 = time.perf_counter()
            manager.__exit__(None, None, None)
            probe.add("whoosh commit", time.perf_counter() - t1)

        def searcher(self):
            stale = self._searcher is not None and not self._searcher.up_to_date()
            t0 = time.perf_counter()
            result = original_searcher(self)
            if stale:
                probe.add("searcher refresh", time.perf_counter() - t0)
            return result

        search_service.sync = sync
        search_service._apply = apply
        SearchIndex.writer = writer
        SearchIndex.searcher = searcher


class Bench:
    def __init__(self, ds: Dataset):
        self.ds = ds
        self.app = make_app(ds)
        self.sessions = self.app.extensions["db_sessionmaker"]
        meta = ds.meta()
        with self.sessions() as session:
            reader = session.scalar(select(User).where(User.email == meta["reader_email"]))
            self.reader_id = reader.id
            self.visible = sorted(session.scalars(
                select(Channel.id).where(search_service.auth.channel_is_visible(reader))).all())
            self.all_channels = sorted(session.scalars(select(Channel.id)).all())

    def search(self, q: Query, *, user_id: int | None = None, facets: bool = True):
        with self.app.test_request_context("/search"):
            session = self.sessions()
            try:
                user = session.get(User, user_id or self.reader_id)
                return search_service.search(session, user, q.raw, today=TODAY, sort=q.sort, facets=facets,
                                             lang=user.lang)
            finally:
                session.close()


def run_queries(bench: Bench, rounds: int, seed: int) -> dict:
    fts = FtsSearch(bench.ds.db, bench.visible)
    tok = FtsTokSearch(bench.ds.db, bench.visible) if "fts_tok" in bench.ds.meta() else None
    tok_times = defaultdict(list)
    info = {}
    # Warm-up round (also the correctness checks): every item visible to the reader. It is the
    # first run of each query in a fresh process, timed as "cold".
    cold = {}
    for q in QUERIES:
        t0 = time.perf_counter()
        page = bench.search(q)
        cold[q.key] = (time.perf_counter() - t0) * 1000
        channels_seen = {item.channel.id for item in page.items if item.channel is not None}
        if not channels_seen <= set(bench.visible):
            sys.exit(f"Permission leak: {q.raw!r} returned channels {channels_seen - set(bench.visible)}")
        ft = fts.run(q)
        info[q.key] = {"total": page.total, "shown": len(page.items), "notices": page.notices,
                       "hits": [[item.kind, item.id, round(item.score, 4)] for item in page.items],
                       "facets": page.facets and {k: [[v, n] for v, _label, n in rows] for k, rows in page.facets.items()},
                       "snippet": page.items[0].snippet[:160] if page.items else "",
                       "fts_total": ft["total"], "fts_match": ft["match"]}
        if tok is not None:
            tt = tok.run(q)
            info[q.key].update(tok_total=tt["total"], tok_match=tt["match"], tok_snippet=tt["snippet"])
    gc.collect()
    gc.freeze()
    whoosh = defaultdict(list)
    whoosh_cpu = defaultdict(list)
    fts_times = {"page": defaultdict(list), "count": defaultdict(list), "facets": defaultdict(list)}
    rng = random.Random(seed)
    load_before = os.getloadavg()[0]
    for _ in range(rounds):
        order = list(QUERIES)
        rng.shuffle(order)
        for q in order:
            c0, t0 = time.process_time(), time.perf_counter()
            bench.search(q)
            whoosh[q.key].append((time.perf_counter() - t0) * 1000)
            whoosh_cpu[q.key].append((time.process_time() - c0) * 1000)
            ft = fts.run(q)
            for key in fts_times:
                fts_times[key][q.key].append(ft[key])
            if tok is not None:
                tok_times[q.key].append(tok.run(q)["page"])
    gc.unfreeze()
    return {"info": info, "cold": cold, "whoosh": dict(whoosh), "whoosh_cpu": dict(whoosh_cpu),
            "fts": {k: dict(v) for k, v in fts_times.items()}, "rounds": rounds,
            "fts_tok": dict(tok_times), "load": [load_before, os.getloadavg()[0]]}


WORD_LETTERS = "bcdfghjklmnpqrstvwxz"


def new_word(i: int, salt: int) -> str:
    """A made-up word that is in no note (and that the stemmer leaves alone)."""
    rng = random.Random(salt * 100_003 + i)
    return "zq" + "".join(rng.choice(WORD_LETTERS) + rng.choice("aeiou") for _ in range(4)) + "x"


def maintenance(bench: Bench) -> float | None:
    """Between samples (untimed): what the periodic `flask search sync` does, merging small segments.
    Returns its ms when it merged, else None."""
    t0 = time.perf_counter()
    merged = search_service.index_for(bench.app).merge_small_segments()
    return (time.perf_counter() - t0) * 1000 if merged else None


def measure_changes(bench: Bench, repeats: int, new_notes: int, seed: int, probe: Probe) -> dict:
    """Commit a change through the services, then search until it is found."""
    probe.install()
    rng = random.Random(seed)
    with bench.sessions() as session:
        candidates = session.scalars(
            select(Note.id).where(Note.channel_id.in_(bench.visible), Note.deleted_at.is_(None))).all()
    picked = rng.sample(candidates, repeats)
    samples = []

    def wait_visible(word: str, note_id: int, t0: float) -> tuple[float, int, float]:
        polls = 0
        first_search = None
        while True:
            polls += 1
            s0 = time.perf_counter()
            page = bench.search(Query("change", word))
            if first_search is None:
                first_search = (time.perf_counter() - s0) * 1000
            if any(item.id == note_id and item.kind != "article" for item in page.items):
                return (time.perf_counter() - t0) * 1000, polls, first_search
            if time.perf_counter() - t0 > 30:
                sys.exit(f"Change to note {note_id} not visible after 30 s")
            time.sleep(0.001)

    for i, note_id in enumerate(picked):
        word = new_word(i, seed)
        with bench.app.test_request_context("/"):
            session = bench.sessions()
            note = session.get(Note, note_id)
            editor = session.get(User, note.author_id)
            data = notes_service.form_values(note)
            data["body"] = data["body"] + f"\n\nUpdate: the {word} question was raised again."
            notes_service.edit_note(session, note, editor, data)
            session.flush()
            probe.reset()
            c0, t0 = time.process_time(), time.perf_counter()
            session.commit()  # after_commit applies the outbox to the index (sync)
            commit_ms = (time.perf_counter() - t0) * 1000
            session.close()
            inside = dict(probe.times)
            probe.reset()
            visible_ms, polls, first_search = wait_visible(word, note_id, t0)
            visible_cpu = (time.process_time() - c0) * 1000
            after = dict(probe.times)
        samples.append({"kind": "edit", "note": note_id, "visible": visible_ms, "visible_cpu": visible_cpu,
                        "commit": commit_ms,
                        "polls": polls, "first_search": first_search, "inside": inside, "after": after,
                        "merge": maintenance(bench)})

    channel_id = next(c for c in bench.visible if c == bench.visible[0])
    for i in range(new_notes):
        word = new_word(1000 + i, seed)
        with bench.app.test_request_context("/"):
            session = bench.sessions()
            channel = session.get(Channel, channel_id)
            author = session.get(User, bench.reader_id)
            note = notes_service.post_note(session, channel, author, "update", {
                "title": f"Bench note {i}", "body": f"A new note about the {word} question.", "lang": "en",
                "topics": ["dsa"],
            })
            probe.reset()
            c0, t0 = time.process_time(), time.perf_counter()
            session.commit()
            commit_ms = (time.perf_counter() - t0) * 1000
            note_id = note.id
            session.close()
            inside = dict(probe.times)
            probe.reset()
            visible_ms, polls, first_search = wait_visible(word, note_id, t0)
            visible_cpu = (time.process_time() - c0) * 1000
            after = dict(probe.times)
        samples.append({"kind": "new", "note": note_id, "visible": visible_ms, "visible_cpu": visible_cpu,
                        "commit": commit_ms,
                        "polls": polls, "first_search": first_search, "inside": inside, "after": after,
                        "merge": maintenance(bench)})
    return {"samples": samples}


def stage_measure(args, variant: str) -> None:
    dsets = datasets(args)
    results = {"variant": variant, "started": datetime.now().isoformat(timespec="seconds"),
               "environment": environment(), "code": code_fingerprint(), "datasets": {}}
    probe = Probe()
    if variant == "whoosh":
        SearchIndex.search = functools.partialmethod(SearchIndex.search, engine="whoosh")
    if args.changes_only:
        measure_changes_only(dsets["synthetic"], args, probe)
        return
    for name in ("synthetic", "corpus"):
        if name == "corpus" and args.no_corpus:
            continue
        built = dsets[name]
        ds = built.work()
        t0 = time.perf_counter()
        remove_db(ds.db)
        shutil.copyfile(built.db, ds.db)
        shutil.copyfile(built.meta_path, ds.meta_path)
        shutil.rmtree(ds.index, ignore_errors=True)
        shutil.copytree(built.index, ds.index)
        print(f"[{variant}] {name}: working copies made in {time.perf_counter() - t0:.1f} s", flush=True)
        bench = Bench(ds)
        t0 = time.perf_counter()
        with bench.app.app_context():
            first = search_service.index_for(bench.app).searcher()
        print(f"[{variant}] {name}: first searcher opened in {(time.perf_counter() - t0) * 1000:.0f} ms "
              f"({first.doc_count()} documents)", flush=True)
        rounds = args.rounds if name == "synthetic" else max(3, args.rounds // 2)
        t0 = time.perf_counter()
        queries = run_queries(bench, rounds, args.seed)
        print(f"[{variant}] {name}: {len(QUERIES)} queries x {rounds} rounds in {time.perf_counter() - t0:.0f} s",
              flush=True)
        queries["array_cache_bytes"] = search_service.index_for(bench.app)._arrays.used
        print(f"[{variant}] {name}: array cache {queries['array_cache_bytes'] / 2**20:.0f} MB", flush=True)
        entry = {"queries": queries, "visible_channels": bench.visible, "all_channels": bench.all_channels,
                 "meta": built.meta()}
        if name == "synthetic" and args.changes:
            t0 = time.perf_counter()
            entry["changes"] = measure_changes(bench, args.changes, args.new_notes, args.seed, probe)
            print(f"[{variant}] {name}: {args.changes} edits + {args.new_notes} new notes in "
                  f"{time.perf_counter() - t0:.0f} s", flush=True)
        if args.profile and name == "synthetic":
            profile_run(bench, variant, probe)
        results["datasets"][name] = entry
        bench.app.extensions["db_engine"].dispose()
    (OUT / f"search-results-{variant}.json").write_text(json.dumps(results, indent=1, ensure_ascii=False))


def measure_changes_only(built: Dataset, args, probe: Probe) -> None:
    """Only the change latency, on copies of its own (a quick re-measurement; nothing is saved)."""
    ds = Dataset(built.name, built.db.with_name(built.db.stem + ".changes.sqlite3"),
                 built.index.with_name(built.index.name + ".changes"))
    remove_db(ds.db)
    shutil.copyfile(built.db, ds.db)
    shutil.copyfile(built.meta_path, ds.meta_path)
    shutil.rmtree(ds.index, ignore_errors=True)
    shutil.copytree(built.index, ds.index)
    bench = Bench(ds)
    load = os.getloadavg()[0]
    changes = measure_changes(bench, args.changes, args.new_notes, args.seed, probe)
    print(f"1-min load {load:.2f} -> {os.getloadavg()[0]:.2f}")
    print(change_table(changes["samples"], "changes only"))
    bench.app.extensions["db_engine"].dispose()
    remove_db(ds.db)
    shutil.rmtree(ds.index, ignore_errors=True)


CODE_FILES = ("portal/search/analysis.py", "portal/search/index.py", "portal/search/query.py",
              "portal/search/vector.py",
              "portal/services/search.py")


def code_fingerprint() -> dict:
    """Hashes of the search code measured: it may change between runs (ranking is being tuned)."""
    out = {}
    for name in CODE_FILES:
        path = ROOT / name
        out[name] = {"sha256": hashlib.sha256(path.read_bytes()).hexdigest()[:12],
                     "mtime": datetime.fromtimestamp(path.stat().st_mtime).isoformat(timespec="seconds")}
    return out


def environment() -> dict:
    return {
        "python": platform.python_version(), "sqlite": sqlite3.sqlite_version,
        "whoosh": metadata.version("whoosh"), "sqlalchemy": metadata.version("sqlalchemy"),
        "flask": metadata.version("flask"), "machine": platform.machine(),
        "system": f"{platform.system()} {platform.release()}", "cpus": os.cpu_count(),
    }


def profile_run(bench: Bench, variant: str, probe: Probe) -> None:
    """pyinstrument (if installed, else cProfile) over the slowest categories and over edits."""
    # cProfile rather than pyinstrument: the time is inside Whoosh, which pyinstrument folds away.
    Profiler = None
    slow = [q for q in QUERIES if q.category in ("en word (common)", "en two words", "en phrase", "ja word",
                                                 "filters")]
    path = OUT / f"search-profile-{variant}.txt"
    with path.open("w") as out:
        def profiled(title: str, fn) -> None:
            if Profiler:
                profiler = Profiler(interval=0.0005)
                profiler.start()
                fn()
                profiler.stop()
                text = profiler.output_text(unicode=True, color=False, show_all=False)
            else:
                import cProfile
                import io
                import pstats
                profiler = cProfile.Profile()
                profiler.enable()
                fn()
                profiler.disable()
                buffer = io.StringIO()
                stats = pstats.Stats(profiler, stream=buffer).strip_dirs()
                stats.sort_stats("cumulative").print_stats(45)
                stats.sort_stats("tottime").print_stats(25)
                text = buffer.getvalue()
            out.write(f"\n==== {title}\n{text}\n")

        for category in sorted({q.category for q in slow}):
            queries = [q for q in slow if q.category == category]
            profiled(f"queries: {category} ({', '.join(q.raw for q in queries)}), 3 rounds",
                     lambda queries=queries: [bench.search(q) for _ in range(3) for q in queries])
        profiled("5 edits: commit (sync) and the first search",
                 lambda: measure_changes(bench, 5, 0, 777, probe))
    print(f"[{variant}] profile written to {path}", flush=True)


# --------------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------------

def fmt_ms(value: float) -> str:
    return f"{value:8.1f}"


def report(args) -> str:
    lines: list[str] = []
    w = lines.append
    runs = {}
    for path in [OUT / "search-results-baseline.json", OUT / "search-results-whoosh.json"]:
        if path.exists():
            runs[path.stem.removeprefix("search-results-")] = json.loads(path.read_text())
    if "baseline" not in runs:
        return "No results yet (bench/out/search-results-baseline.json)."
    base = runs["baseline"]
    env = base["environment"]
    w(f"Python {env['python']}, SQLite {env['sqlite']}, Whoosh {env['whoosh']}, SQLAlchemy {env['sqlalchemy']}, "
      f"Flask {env['flask']}, {env['machine']}, {env['system']}, CPUs: {env['cpus']}; run {base['started']}")
    for variant, run in runs.items():
        code = run.get("code", {})
        w(f"search code measured ({variant}" + (", engine=\"whoosh\"" if variant == "whoosh" else "")
          + "): " + ", ".join(f"{Path(n).name} {v['sha256']} ({v['mtime']})" for n, v in code.items()))
    if len({json.dumps(run.get("code"), sort_keys=True) for run in runs.values()}) > 1:
        w("WARNING: the search code changed between the runs compared below.")
    for name, entry in base["datasets"].items():
        current = datasets(args)[name].meta()
        meta = current if current.get("seed") == entry["meta"].get("seed") else entry["meta"]
        ix, fts = meta.get("index", {}), meta.get("fts", {})
        w("")
        w(f"== {name}: {meta['notes']} notes ({meta['stats'].get('lang ja', 0)} Japanese), seed {meta['seed']}; "
          f"reader sees channels {entry['visible_channels']} of {entry['all_channels']}")
        if ix.get("code") and {n: v["sha256"] for n, v in ix["code"].items()} != {
                n: v["sha256"] for n, v in base.get("code", {}).items()}:
            w("NOTE: the search code changed after this index was built (" + ", ".join(
                Path(n).name for n, v in ix["code"].items() if base.get("code", {}).get(n, {}).get("sha256") != v["sha256"])
              + "); --reindex rebuilds it with the current code.")
        w(f"Indexing (services.search.rebuild, writer procs={ix.get('procs', 1)}): {ix.get('documents')} documents "
          f"in {ix.get('seconds')} s = {ix.get('notes_per_s')} notes/s (CPU {ix.get('cpu_seconds')} s; of which "
          f"building the documents alone, SQL + note_document: {ix.get('document_build_seconds')} s); "
          f"index {ix.get('bytes', 0) / 1e6:.0f} MB, {ix.get('segments')} segment(s)")
        if meta.get("fts_tok"):
            tk = meta["fts_tok"]
            w(f"Plan B, FTS5 (unicode61) over the portal's analyzer tokens: {tk['seconds']} s = {tk['notes_per_s']} "
              f"notes/s (documents + analysis + insert), {tk['bytes'] / 1e6:.0f} MB incl. the stored plain text")
        w(f"FTS5 trigram over the same notes: {fts.get('seconds')} s = {fts.get('notes_per_s')} notes/s "
          f"(+ optimize {fts.get('optimize_seconds')} s), {fts.get('bytes', 0) / 1e6:.0f} MB; database "
          f"{meta['db_bytes'] / 1e6:.0f} MB without it")
        for variant, run in runs.items():
            if name not in run["datasets"]:
                continue
            w("")
            q = run["datasets"][name]["queries"]
            w(f"-- queries, {variant}: {len(q['whoosh'])} queries x {q['rounds']} rounds; 1-min load "
              f"{q['load'][0]:.2f} -> {q['load'][1]:.2f}; array cache {q.get('array_cache_bytes', 0) / 2**20:.0f} MB")
            all_w = [v for values in q["whoosh"].values() for v in values]
            all_c = [v for values in q["whoosh_cpu"].values() for v in values]
            f_page = [v for values in q["fts"]["page"].values() for v in values]
            f_count = [v for values in q["fts"]["count"].values() for v in values]
            f_facets = [v for values in q["fts"]["facets"].values() for v in values]
            header = f"{'':44} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}"
            w(header)
            w(f"{'Whoosh (services.search.search, facets on)':44} {fmt_ms(percentile(all_w, .5))} "
              f"{fmt_ms(percentile(all_w, .95))} {fmt_ms(max(all_w))}")
            w(f"{'  same, process CPU':44} {fmt_ms(percentile(all_c, .5))} {fmt_ms(percentile(all_c, .95))} "
              f"{fmt_ms(max(all_c))}")
            if q.get("cold"):
                cold = list(q["cold"].values())
                w(f"{'  cold: first run of each query (warm-up)':44} {fmt_ms(percentile(cold, .5))} "
                  f"{fmt_ms(percentile(cold, .95))} {fmt_ms(max(cold))}")
            w(f"{'FTS5 trigram: top 20 + snippet (baseline)':44} {fmt_ms(percentile(f_page, .5))} "
              f"{fmt_ms(percentile(f_page, .95))} {fmt_ms(max(f_page))}")
            w(f"{'FTS5 + total count':44} {fmt_ms(percentile(f_count, .5))} {fmt_ms(percentile(f_count, .95))} "
              f"{fmt_ms(max(f_count))}")
            w(f"{'FTS5 + count + 3 facet counts':44} {fmt_ms(percentile(f_facets, .5))} "
              f"{fmt_ms(percentile(f_facets, .95))} {fmt_ms(max(f_facets))}")
            tok = [v for values in q.get("fts_tok", {}).values() for v in values]
            if tok:
                w(f"{'plan B: FTS5 on portal tokens, whole page':44} {fmt_ms(percentile(tok, .5))} "
                  f"{fmt_ms(percentile(tok, .95))} {fmt_ms(max(tok))}   (top 20 + count + facets + snippets; "
                  f"ratio to the baseline p95 {percentile(tok, .95) / percentile(f_page, .95):.2f})")
            r95 = percentile(all_w, .95) / percentile(f_page, .95)
            r50 = percentile(all_w, .5) / percentile(f_page, .5)
            w(f"Ratio Whoosh / FTS5 baseline: p95 {r95:.2f}, p50 {r50:.2f}   (vs FTS5 + count + facets: p95 "
              f"{percentile(all_w, .95) / percentile(f_facets, .95):.2f}); target p95 ratio <= 1.0: "
              f"{'met' if r95 <= 1.0 else 'MISSED'}" + (" (target applies at 100k notes)" if name != "synthetic" else ""))
            w("")
            w(f"{'category':18} {'Whoosh p50':>10} {'p95':>8} {'FTS5 p50':>9} {'p95':>8} {'ratio p50':>9}"
              + (f" {'plan B p50':>10} {'p95':>8}" if tok else ""))
            by_cat = defaultdict(lambda: ([], [], []))
            for query in QUERIES:
                by_cat[query.category][0].extend(q["whoosh"][query.key])
                by_cat[query.category][1].extend(q["fts"]["page"][query.key])
                by_cat[query.category][2].extend(q.get("fts_tok", {}).get(query.key, []))
            for category, (wv, fv, tv) in by_cat.items():
                w(f"{category:18} {percentile(wv, .5):10.1f} {percentile(wv, .95):8.1f} {percentile(fv, .5):9.1f} "
                  f"{percentile(fv, .95):8.1f} {percentile(wv, .5) / max(percentile(fv, .5), 1e-3):9.2f}"
                  + (f" {percentile(tv, .5):10.1f} {percentile(tv, .95):8.1f}" if tv else ""))
            if variant == "baseline" or args.verbose:
                w("")
                has_tok = bool(q.get("fts_tok"))
                w(f"{'query':42} {'hits':>7} {'FTS5':>7} " + (f"{'plan B':>7} " if has_tok else "")
                  + f"{'Whoosh ms':>9} {'FTS5 ms':>8} " + (f"{'B ms':>7} " if has_tok else "") + " FTS5 MATCH")
                for query in QUERIES:
                    info = q["info"][query.key]
                    w(f"{query.key[:42]:42} {info['total']:7d} {info['fts_total']:7d} "
                      + (f"{info.get('tok_total', 0):7d} " if has_tok else "")
                      + f"{statistics.median(q['whoosh'][query.key]):9.1f} "
                      f"{statistics.median(q['fts']['page'][query.key]):8.1f} "
                      + (f"{statistics.median(q['fts_tok'][query.key]):7.1f} " if has_tok else "")
                      + f" {info['fts_match'] or '(no MATCH: SQL only)'}")
            changes = run["datasets"][name].get("changes")
            if changes:
                w("")
                w(change_table(changes["samples"], variant))
    if "whoosh" in runs and "synthetic" in runs["whoosh"]["datasets"]:
        w("")
        w("== arrays (baseline) / Whoosh's matchers (synthetic), ms")
        b = base["datasets"]["synthetic"]["queries"]
        p = runs["whoosh"]["datasets"]["synthetic"]["queries"]
        w(f"{'query':42} {'arrays p50':>10} {'Whoosh p50':>10} {'arrays p95':>10} {'Whoosh p95':>10}")
        for query in QUERIES:
            k = query.key
            w(f"{k[:42]:42} {percentile(b['whoosh'][k], .5):10.1f} {percentile(p['whoosh'][k], .5):10.1f} "
              f"{percentile(b['whoosh'][k], .95):10.1f} {percentile(p['whoosh'][k], .95):10.1f}")
        w(same_answers(b["info"], p["info"]))
    text = "\n".join(lines)
    (OUT / "search-report.txt").write_text(text + "\n")
    return text


def same_answers(before: dict, after: dict) -> str:
    """Whether both engines return the same totals, facets and hits (in order, up to score ties)."""
    problems = []
    for query in QUERIES:
        b, a = before.get(query.key), after.get(query.key)
        if b is None or a is None:
            continue
        if b["total"] != a["total"]:
            problems.append(f"{query.key}: total {b['total']} -> {a['total']}")
        def facet_set(info):
            return {name: sorted(map(tuple, rows)) for name, rows in (info.get("facets") or {}).items()}
        if facet_set(b) != facet_set(a):
            problems.append(f"{query.key}: facet counts differ")
        if [h[:2] for h in b.get("hits", [])] != [h[:2] for h in a.get("hits", [])]:
            # Equal scores may be ordered differently (Whoosh sums float scores in another order
            # once a matcher is replaced); compare the hits grouped by score.
            def groups(hits):
                by_score = defaultdict(set)
                for kind, ident, score in hits:
                    by_score[round(score, 2)].add((kind, ident))
                return by_score
            gb, ga = groups(b.get("hits", [])), groups(a.get("hits", []))
            tail = min(h[2] for h in b["hits"]) if b.get("hits") else None
            differ = [sc for sc in set(gb) | set(ga) if gb.get(sc) != ga.get(sc) and round(tail or 0, 2) != sc]
            problems.append(f"{query.key}: hits {'differ' if differ else 'reordered among equal scores'}")
    if not problems:
        return "Same answers from both engines: totals, facet counts and hits identical for every query."
    return "Answers of the two engines: " + "; ".join(problems)


def change_table(samples: list[dict], variant: str) -> str:
    lines = []
    for kind, label in (("edit", "edit of an existing note"), ("new", "new note")):
        chosen = [s for s in samples if s["kind"] == kind]
        if not chosen:
            continue
        lines.append(f"-- one note's change visible to search, {variant}: {label}, {len(chosen)} samples")
        rows = [("commit -> visible (target p95 <= 150 ms)", [s["visible"] for s in chosen])]
        if all("visible_cpu" in s for s in chosen):
            rows.append(("  same, process CPU", [s["visible_cpu"] for s in chosen]))
        rows += [
            ("  session.commit() incl. sync", [s["commit"] for s in chosen]),
            ("    DB commit (commit - sync)", [s["commit"] - s["inside"].get("sync", 0) for s in chosen])]
        keys = ["sync", "writer open", "apply", "writer.update_document", "writer.add_document",
                "writer.delete_by_term", "writer.delete_document", "whoosh commit", "searcher refresh"]
        for key in keys:
            values = [s["inside"].get(key, 0.0) for s in chosen]
            if any(values):
                rows.append((f"    {key}", values))
        rows.append(("  first search after commit", [s["first_search"] for s in chosen]))
        values = [s["after"].get("searcher refresh", 0.0) for s in chosen]
        rows.append(("    of which searcher refresh", values))
        rows.append(("  searches until found", [float(s["polls"]) for s in chosen]))
        merges = [s["merge"] for s in chosen if s.get("merge")]
        if merges:
            lines.append(f"(out-of-band merges of small segments between samples, not in the latency: {len(merges)}, "
                         f"{statistics.median(merges):.0f} ms median, {max(merges):.0f} ms max)")
        lines.append(f"{'':44} {'p50':>8} {'p95':>8} {'max':>8}")
        for title, values in rows:
            lines.append(f"{title:44} {percentile(values, .5):8.1f} {percentile(values, .95):8.1f} {max(values):8.1f}")
        if kind == "edit":
            p95 = percentile([s["visible"] for s in chosen], .95)
            lines.append(f"target: change visible within 150 ms of commit (p95): {'met' if p95 <= 150 else 'MISSED'} "
                         f"({p95:.0f} ms)")
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# Orchestration
# --------------------------------------------------------------------------------------------

def run_stage(args_list: list[str]) -> None:
    command = [sys.executable, str(Path(__file__).resolve()), *args_list]
    result = subprocess.run(command, check=False)
    if result.returncode:
        sys.exit(f"stage failed: {' '.join(args_list)}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--notes", type=int, default=100_000, help="synthetic notes (default 100000)")
    parser.add_argument("--seed", type=int, default=20260115)
    parser.add_argument("--rebuild", action="store_true", help="rebuild databases, indexes and FTS tables")
    parser.add_argument("--reindex", action="store_true", help="rebuild the Whoosh indexes and FTS tables only")
    parser.add_argument("--rounds", type=int, default=5, help="timed rounds over the query set (synthetic)")
    parser.add_argument("--changes", type=int, default=30, help="edits timed for change latency (0: none)")
    parser.add_argument("--new-notes", type=int, default=10, help="new notes timed for change latency")
    parser.add_argument("--index-procs", type=int, default=1,
                        help="writer processes for the rebuild (1 = the portal's own code path)")
    parser.add_argument("--no-corpus", action="store_true", help="skip the real corpus")
    parser.add_argument("--plan-b", action="store_true",
                        help="also build and time FTS5 over the portal's own tokens (experimental)")
    parser.add_argument("--compare-whoosh", action="store_true",
                        help="also measure with search on Whoosh's own matchers (engine=\"whoosh\") and "
                             "compare the answers")
    parser.add_argument("--changes-only", action="store_true",
                        help="only re-measure the change latency (synthetic, on copies of its own), print it")
    parser.add_argument("--profile", action="store_true", help="profile slow queries and edits (pyinstrument)")
    parser.add_argument("--report-only", action="store_true")
    parser.add_argument("--verbose", action="store_true", help="per-query table for every variant")
    parser.add_argument("--stage", choices=("build-db", "index", "fts", "fts-tok", "measure"), help=argparse.SUPPRESS)
    parser.add_argument("--dataset", choices=("synthetic", "corpus"), help=argparse.SUPPRESS)
    parser.add_argument("--variant", choices=("baseline", "whoosh"), default="baseline", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    OUT.mkdir(parents=True, exist_ok=True)
    dsets = datasets(args)

    if args.changes_only:
        stage_measure(args, "baseline")
        return
    if args.stage:
        if args.stage == "measure":
            stage_measure(args, args.variant)
            return
        ds = dsets[args.dataset]
        {"build-db": stage_build_db, "index": stage_index, "fts": stage_fts, "fts-tok": stage_fts_tok}[args.stage](ds, args)
        return

    if not args.report_only:
        passthrough = [f"--notes={args.notes}", f"--seed={args.seed}", f"--rounds={args.rounds}",
                       f"--changes={args.changes}", f"--new-notes={args.new_notes}",
                       f"--index-procs={args.index_procs}"]
        passthrough += ["--no-corpus"] if args.no_corpus else []
        passthrough += ["--profile"] if args.profile else []
        for name, ds in dsets.items():
            if name == "corpus" and args.no_corpus:
                continue
            meta = ds.meta()
            fresh = args.rebuild or not ds.db.exists() or meta.get("seed") != args.seed
            if fresh:
                print(f"Building {ds.db.name} …", flush=True)
                run_stage(["--stage", "build-db", "--dataset", name, *passthrough])
                meta = ds.meta()
            if fresh or args.reindex or "index" not in meta or not ds.index.exists():
                print(f"Indexing {name} with Whoosh …", flush=True)
                run_stage(["--stage", "index", "--dataset", name, *passthrough])
            meta = ds.meta()
            if fresh or args.reindex or "fts" not in meta:
                print(f"Building the FTS5 table for {name} …", flush=True)
                run_stage(["--stage", "fts", "--dataset", name, *passthrough])
            meta = ds.meta()
            if args.plan_b and (fresh or args.reindex or "fts_tok" not in meta):
                print(f"Building the plan B table for {name} …", flush=True)
                run_stage(["--stage", "fts-tok", "--dataset", name, *passthrough])
        variants = ["baseline", "whoosh"] if args.compare_whoosh else ["baseline"]
        for variant in variants:
            print(f"Measuring ({variant}) …", flush=True)
            run_stage(["--stage", "measure", "--variant", variant, *passthrough])
    print()
    print(report(args))


if __name__ == "__main__":
    main()
