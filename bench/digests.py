"""Digest benchmark: compose every reader's daily digest (`--dry-run`) on a large database.

Usage (from the repository root, with the project's virtualenv):

    .venv/bin/python bench/digests.py                 # the three scales below, built once into bench/out/
    .venv/bin/python bench/digests.py --only base     # one scale
    .venv/bin/python bench/digests.py --rebuild       # force fresh databases

Scales (issue 4): `base` is 10,000 subscribers, 100,000 older notes, and in the period 2,000 new notes
and 8,000 new replies; `subscribers` doubles the subscribers; `items` doubles the new notes and replies.
Each subscriber follows two topics and one channel, daily (from 32 topics and 60 channels: joint, EU, JP
and private ones with named members); 5 % of notes are sensitive, a third are questions.

Each measurement runs `digests.send_digests(..., dry_run=True)` in a fresh interpreter and prints the
wall time, the process CPU time, the peak resident memory (VmHWM, before and after) and how many SQL statements ran.
Growth with subscribers plus items shows as about 2x time when either doubles, not 4x.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import time
from datetime import date, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from sqlalchemy import event, insert, select  # noqa: E402

from portal import create_app  # noqa: E402
from portal.db import engine as app_engine  # noqa: E402
from portal.db import get_session, migrate  # noqa: E402
from portal.models import (  # noqa: E402
    Channel,
    ChannelMembership,
    DigestEvent,
    Note,
    Organisation,
    Reply,
    Subscription,
    Topic,
    User,
    note_topics,
)
from portal.services import content  # noqa: E402

OUT = ROOT / "bench" / "out"
SCALES = {
    "base": dict(subscribers=10_000, old_notes=100_000, new_notes=2_000, new_replies=8_000),
    "subscribers": dict(subscribers=20_000, old_notes=100_000, new_notes=2_000, new_replies=8_000),
    "items": dict(subscribers=10_000, old_notes=100_000, new_notes=4_000, new_replies=16_000),
}
CHANNELS = 60
PERIOD_END = datetime(2026, 11, 20)  # the daily period measured is 2026-11-19
BATCH = 5_000


def app_for(path: Path):
    return create_app({"INSTANCE_PATH": str(OUT / "instance"), "DATABASE_URL": f"sqlite:///{path}",
                       "SECRET_KEY": "bench", "SEARCH_DIR": "memory", "BASE_URL": "https://portal.example"})


def chunks(rows, size=BATCH):
    for start in range(0, len(rows), size):
        yield rows[start:start + size]


def build(path: Path, subscribers: int, old_notes: int, new_notes: int, new_replies: int, seed: int = 4) -> None:
    """A fresh database of this scale, bulk-inserted with SQLAlchemy Core."""
    rng = random.Random(seed)
    path.unlink(missing_ok=True)
    app = app_for(path)
    with app.app_context():
        migrate(app_engine())
        db = get_session()
        content.load_content(db)
        db.commit()
        topics = list(db.scalars(select(Topic.id)))
        db.execute(insert(Organisation), [{"slug": "eu-org", "name": "EU", "side": "eu"},
                                          {"slug": "jp-org", "name": "JP", "side": "jp"}])
        orgs = dict(db.execute(select(Organisation.side, Organisation.id)).all())
        visibilities = ["joint"] * 30 + ["eu"] * 10 + ["jp"] * 10 + ["private"] * 10
        db.execute(insert(Channel), [{"slug": f"c{i}", "name_en": f"Channel {i}", "name_ja": f"チャンネル{i}",
                                      "visibility": visibilities[i]} for i in range(CHANNELS)])
        channel_ids = list(db.scalars(select(Channel.id).order_by(Channel.id)))
        users = [{"email": f"u{i}@example.org", "name": f"User {i}", "organisation_id": orgs["eu" if i % 2 else "jp"],
                  "password_hash": "x", "lang": "ja" if i % 2 == 0 else "en", "session_token": f"t{i}"}
                 for i in range(subscribers)]
        for rows in chunks(users):
            db.execute(insert(User), rows)
        user_ids = list(db.scalars(select(User.id).order_by(User.id)))
        private = [cid for cid, vis in zip(channel_ids, visibilities) if vis == "private"]
        db.execute(insert(ChannelMembership), [{"channel_id": cid, "user_id": uid}
                                               for uid in user_ids for cid in rng.sample(private, 2)])
        subs = []
        for uid in user_ids:
            for topic in rng.sample(topics, 2):
                subs.append({"user_id": uid, "target": "topic", "topic_id": topic, "frequency": "daily"})
            subs.append({"user_id": uid, "target": "channel", "channel_id": rng.choice(channel_ids),
                         "frequency": "daily"})
        for rows in chunks(subs):
            db.execute(insert(Subscription), rows)
        period_start = PERIOD_END - timedelta(days=1)

        def note_row(number: int, at: datetime) -> dict:
            kind = rng.choice(("update", "case", "question"))
            row = {"channel_id": rng.choice(channel_ids), "author_id": rng.choice(user_ids), "kind": kind,
                   "title": f"Note {number} on platform regulation", "body": "Body", "body_html": "<p>Body</p>",
                   "lang": "en", "marking": "sensitive" if rng.random() < 0.05 else "limited",
                   "case_status": "open" if kind == "case" else None,
                   "addressed_side": rng.choice(("eu", "jp")) if kind == "question" else None,
                   "question_state": ("open" if rng.random() < 0.1 else "answered") if kind == "question" else None,
                   "answer_by": date(2026, 12, 1) if kind == "question" else None,
                   "created_at": at, "updated_at": at, "last_activity_at": at}
            return row

        notes = [note_row(n, period_start - timedelta(days=rng.randint(2, 700))) for n in range(old_notes)]
        notes += [note_row(old_notes + n, period_start + timedelta(seconds=rng.randint(0, 86_399)))
                  for n in range(new_notes)]
        for rows in chunks(notes):
            db.execute(insert(Note), rows)
        note_ids = list(db.scalars(select(Note.id).order_by(Note.id)))
        links = [{"note_id": nid, "topic_id": tid} for nid in note_ids for tid in rng.sample(topics, rng.randint(1, 2))]
        for rows in chunks(links):
            db.execute(insert(note_topics), rows)
        events = [{"kind": "note", "note_id": nid, "created_at": row["created_at"], "details": {}}
                  for nid, row in zip(note_ids, notes)]
        replies = []
        for n in range(new_replies):
            at = period_start + timedelta(seconds=rng.randint(0, 86_399))
            replies.append({"note_id": rng.choice(note_ids), "author_id": rng.choice(user_ids), "body": "Reply",
                            "body_html": "<p>Reply</p>", "depth": 0, "path": f"{n:010d}/", "created_at": at,
                            "updated_at": at})
        for rows in chunks(replies):
            db.execute(insert(Reply), rows)
        for reply_id, row in zip(db.scalars(select(Reply.id).order_by(Reply.id)), replies):
            events.append({"kind": "reply", "note_id": row["note_id"], "reply_id": reply_id,
                           "created_at": row["created_at"], "details": {}})
        for rows in chunks(events):
            db.execute(insert(DigestEvent), rows)
        db.commit()
        db.execute(select(1))
        app_engine().dispose()
    import sqlite3
    with sqlite3.connect(path) as connection:
        connection.execute("ANALYZE")


def peak_rss_mb() -> float:
    """This process's peak resident memory (VmHWM: unlike ru_maxrss, not inherited across exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    return float("nan")


def measure(path: Path) -> dict:
    """Run in a fresh interpreter: compose every digest of the period, send nothing."""
    from portal.services import digests

    app = app_for(path)
    statements = 0

    def count(*_args):
        nonlocal statements
        statements += 1

    with app.app_context():
        event.listen(app_engine(), "before_cursor_execute", count)
        rss_before = peak_rss_mb()
        wall, cpu = time.perf_counter(), time.process_time()
        report = digests.send_digests(get_session(), frequency="daily", at=PERIOD_END, dry_run=True)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        peak = peak_rss_mb()
    return {"wall_s": round(wall, 2), "cpu_s": round(cpu, 2), "peak_rss_mb": peak,
            "rss_before_mb": rss_before, "statements": statements,
            "digests": report.sent, "empty": report.empty, "items": report.items}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", choices=sorted(SCALES))
    parser.add_argument("--rebuild", action="store_true")
    parser.add_argument("--measure", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(args.measure)))
        return
    OUT.mkdir(parents=True, exist_ok=True)
    print(f"load average before: {os.getloadavg()}")
    for name, scale in SCALES.items():
        if args.only and name != args.only:
            continue
        path = OUT / f"digests-{name}.sqlite3"
        if args.rebuild or not path.exists():
            started = time.perf_counter()
            build(path, **scale)
            print(f"built {name} in {time.perf_counter() - started:.0f} s")
        result = subprocess.run([sys.executable, __file__, "--measure", str(path)], capture_output=True, text=True,
                                check=True)
        figures = json.loads(result.stdout.strip().splitlines()[-1])
        print(f"{name:<12} {scale} -> {figures}  load {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
