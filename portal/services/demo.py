"""Realistic demo data on both sides, loaded idempotently from portal/demo/demo.json."""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from portal.db import utcnow
from portal.models import Channel, Note, Organisation, User
from portal.services import accounts, channels, notes, replies

DEMO_FILE = Path(__file__).resolve().parents[1] / "demo" / "demo.json"
# Printed by `make run`; demo accounts exist only in a demo database.
DEMO_PASSWORD = "exchange-demo-2026"


@dataclass
class DemoReport:
    users: list[User]
    notes_created: int
    replies_created: int


def load_demo(session: Session, today: date, path: Path = DEMO_FILE) -> DemoReport:
    """Create the demo organisations, users, channels, notes and replies that do not exist yet."""
    data = json.loads(path.read_text(encoding="utf-8"))
    orgs = {}
    for entry in data["organisations"]:
        orgs[entry["slug"]] = session.scalar(
            select(Organisation).where(Organisation.slug == entry["slug"])
        ) or accounts.create_organisation(session, **entry)
    users = {}
    for entry in data["users"]:
        user = session.scalar(select(User).where(User.email == entry["email"]))
        if user is None:
            user = accounts.create_user(
                session, email=entry["email"], name=entry["name"], organisation=orgs[entry["org"]],
                role=entry["role"], lang=entry.get("lang", "en"), password=DEMO_PASSWORD,
            )
        users[entry["email"]] = user
    chans = {}
    for entry in data["channels"]:
        channel = session.scalar(select(Channel).where(Channel.slug == entry["slug"]))
        if channel is None:
            fields = {k: entry[k] for k in ("slug", "name_en", "name_ja", "description_en",
                                            "description_ja", "visibility")}
            channel = channels.create_channel(session, fields, actor=None)
            for email in entry.get("members", []):
                channels.add_member(session, channel, users[email], actor=None)
            for email in entry.get("moderators", []):
                channels.add_member(session, channel, users[email], is_moderator=True, actor=None)
        chans[entry["slug"]] = (channel, entry.get("is_archived", False))
    created_notes = created_replies = 0
    now = utcnow()
    for entry in data["notes"]:
        channel, _ = chans[entry["channel"]]
        if session.scalar(select(Note.id).where(Note.channel_id == channel.id,
                                                Note.external_id == entry["id"])):
            continue
        fields = dict(entry)
        posted = now - timedelta(days=entry["days_ago"], hours=len(entry["title"]) % 9)
        if entry["kind"] == "question":
            fields["answer_by"] = (today + timedelta(days=entry["answer_by_days"])).isoformat()
        if entry["kind"] == "case":
            fields["case_status"] = entry.get("status", "open")
            fields["milestones"] = [
                {"due_on": (today + timedelta(days=m["days_from_now"])).isoformat(), "label": m["label"]}
                for m in entry.get("milestones", [])
            ]
        author = users[entry["author"]]
        note = notes.post_note(session, channel, author, entry["kind"], fields,
                               external_id=entry["id"], created_at=posted)
        created_notes += 1
        accepted = []
        created_replies += _replies(session, note, entry.get("replies", []), users, None, posted, accepted)
        if entry["kind"] == "question" and entry.get("state") == "answered" and accepted:
            notes.accept_answer(session, note, accepted[0], author)
        elif entry["kind"] == "question" and entry.get("state") == "declined":
            note.question_state, note.declined_grounds = "declined", entry.get("declined_grounds", "")
    for channel, is_archived in chans.values():
        channel.is_archived = is_archived
    session.flush()
    return DemoReport(users=list(users.values()), notes_created=created_notes,
                      replies_created=created_replies)


def _replies(session, note, entries, users, parent, after, accepted) -> int:
    count = 0
    for position, entry in enumerate(entries, start=1):
        at = after + timedelta(hours=3 * position)
        reply = replies.post_reply(session, note, users[entry["author"]], entry["body"],
                                   parent=parent, created_at=at)
        if entry.get("accepted"):
            accepted.append(reply)
        count += 1 + _replies(session, note, entry.get("replies", []), users, reply, at, accepted)
    return count
