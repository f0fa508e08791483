"""Notes (updates, cases, questions): posting, editing with history, states, soft deletion."""
from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from datetime import date, datetime

from flask import current_app
from flask_babel import lazy_gettext as _l
from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from portal import auth
from portal.db import utcnow
from portal.errors import Forbidden, ValidationError
from portal.markup import render_markdown
from portal.models import CaseMilestone, Channel, Note, NoteArticle, NoteRevision, Reply, User
from portal.models.notes import CASE_STATUSES, KINDS, LANGS, MARKINGS
from portal.services import acknowledgements, audit, content, digests, notifications

TITLE_MAX = 300


@dataclass
class NoteData:
    """A note's editable fields, validated."""

    title: str
    body: str
    lang: str
    marking: str
    topics: list = field(default_factory=list)
    citations: list = field(default_factory=list)
    case_reference: str = ""
    platforms: str = ""
    legal_basis: str = ""
    case_status: str | None = None
    answer_by: date | None = None
    milestones: list[tuple[date, str]] = field(default_factory=list)

    def snapshot(self) -> dict:
        """What a revision records besides title and body."""
        return {
            "lang": self.lang,
            "marking": self.marking,
            "topics": sorted(topic.slug for topic in self.topics),
            "articles": [f"{a.act.short} Art. {a.number}{p}" for a, p in self.citations],
            "case_reference": self.case_reference,
            "platforms": self.platforms,
            "legal_basis": self.legal_basis,
            "case_status": self.case_status,
            "answer_by": self.answer_by.isoformat() if self.answer_by else None,
            "milestones": [f"{d.isoformat()} {label}" for d, label in self.milestones],
        }


def _as_list(value, separators: str = ",\n;") -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        for separator in separators[1:]:
            value = value.replace(separator, separators[0])
        return [part.strip() for part in value.split(separators[0]) if part.strip()]
    if isinstance(value, (list, tuple)):
        return [str(part).strip() for part in value if str(part).strip()]
    raise ValidationError(_l("Expected a list."))


def _parse_date(value, field_name: str) -> date | None:
    if value in (None, ""):
        return None
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value).strip())
    except ValueError:
        raise ValidationError({field_name: _l("'%(value)s' is not a date; use YYYY-MM-DD.", value=value)}) from None


def _parse_milestones(value) -> list[tuple[date, str]]:
    """Milestones as "YYYY-MM-DD label" lines, or a list of {"due_on", "label"} objects."""
    milestones = []
    items = value.splitlines() if isinstance(value, str) else (value or [])
    for item in items:
        if isinstance(item, dict):
            due_on, label = item.get("due_on"), str(item.get("label", "")).strip()
        else:
            due_on, _, label = str(item).strip().partition(" ")
            if not due_on:
                continue
        parsed = _parse_date(due_on, "milestones")
        if parsed is None or not label.strip():
            raise ValidationError({"milestones": _l("Write each milestone as a line: YYYY-MM-DD what happens.")})
        milestones.append((parsed, label.strip()[:300]))
    return sorted(milestones)


# Whole sentences per noun, so that each can be translated as a sentence.
MISSING_TITLE_AND_BODY = {
    "note": (_l("Give the note a title."), _l("Write the note's text.")),
    "translation": (_l("Give the translation a title."), _l("Write the translation's text.")),
}


def title_and_body(data: dict, errors: dict[str, str], *, noun: str = "note") -> tuple[str, str]:
    """A title and a Markdown body, tidied; what is wrong with them goes into errors."""
    title = " ".join(str(data.get("title") or "").split())
    body = str(data.get("body") or "").replace("\r\n", "\n").strip()
    no_title, no_body = MISSING_TITLE_AND_BODY[noun]
    if not title:
        errors["title"] = no_title
    elif len(title) > TITLE_MAX:
        errors["title"] = _l("Keep the title under %(n)s characters.", n=TITLE_MAX)
    if not body:
        errors["body"] = no_body
    elif len(body.encode()) > current_app.config["MAX_BODY_BYTES"]:
        errors["body"] = _l("The text is over the 200 KB limit; split it into several notes.")
    return title, body


def validate(session: Session, kind: str, data: dict) -> NoteData:
    """Check and convert raw input (a form or a JSON object) into NoteData, naming every bad field."""
    errors: dict[str, str] = {}

    def attempt(fn, *args):
        try:
            return fn(*args)
        except ValidationError as error:
            errors.update(error.errors)
            return None

    title, body = title_and_body(data, errors)
    lang = str(data.get("lang") or "en")
    if lang not in LANGS:
        errors["lang"] = _l("The language is en or ja.")
    marking = str(data.get("marking") or "limited")
    if marking not in MARKINGS:
        errors["marking"] = _l("The marking is public, limited or sensitive.")
    topics = attempt(lambda: content.topics_by_slug(session, _as_list(data.get("topics")))) or []
    citations = []
    for text in _as_list(data.get("articles"), ";\n,"):
        citation = attempt(content.parse_citation, session, text)
        if citation and citation not in citations:
            citations.append(citation)
    note = NoteData(title=title, body=body, lang=lang, marking=marking, topics=topics, citations=citations)
    if kind == "case":
        note.case_reference = str(data.get("case_reference") or "").strip()[:100]
        note.platforms = str(data.get("platforms") or "").strip()[:300]
        note.legal_basis = str(data.get("legal_basis") or "").strip()[:300]
        note.case_status = str(data.get("case_status") or "open")
        if note.case_status not in CASE_STATUSES:
            errors["case_status"] = _l("Unknown case status.")
        note.milestones = attempt(_parse_milestones, data.get("milestones")) or []
    elif kind == "question":
        note.answer_by = attempt(_parse_date, data.get("answer_by"), "answer_by")
        if note.answer_by is None and "answer_by" not in errors:
            errors["answer_by"] = _l("Give the date by which an answer is needed.")
    if kind not in KINDS:
        errors["kind"] = _l("The kind is update, case or question.")
    if errors:
        raise ValidationError(errors)
    return note


def _apply(note: Note, data: NoteData) -> None:
    note.title, note.body, note.lang, note.marking = data.title, data.body, data.lang, data.marking
    note.body_html = render_markdown(data.body)
    note.topics = list(data.topics)
    wanted = {(article.id, pinpoint) for article, pinpoint in data.citations}
    note.citations = [c for c in note.citations if (c.article_id, c.pinpoint) in wanted]
    present = {(c.article_id, c.pinpoint) for c in note.citations}
    for article, pinpoint in data.citations:
        if (article.id, pinpoint) not in present:
            note.citations.append(NoteArticle(article=article, pinpoint=pinpoint))
    if note.kind == "case":
        note.case_reference, note.platforms = data.case_reference, data.platforms
        note.legal_basis, note.case_status = data.legal_basis, data.case_status
        note.milestones = [CaseMilestone(due_on=d, label=label) for d, label in data.milestones]
    elif note.kind == "question":
        note.answer_by = data.answer_by


def post_note(
    session: Session,
    channel: Channel,
    author: User,
    kind: str,
    data: dict,
    *,
    external_id: str | None = None,
    created_at: datetime | None = None,
    request_acknowledgement: bool = False,
) -> Note:
    """Post a note of this kind in a channel the author may write in, asking the other side to
    acknowledge it when told to; refused as a whole (ValidationError) when that cannot be asked."""
    auth.require_writable(channel)
    clean = validate(session, kind, data)
    now = created_at or utcnow()
    note = Note(
        channel=channel,
        author=author,
        kind=kind,
        external_id=external_id,
        created_at=now,
        updated_at=now,
        last_activity_at=now,
    )
    if kind == "question":
        note.question_state = "open"
        note.addressed_side = "jp" if author.side == "eu" else "eu"
    _apply(note, clean)
    note.revisions.append(
        NoteRevision(number=1, title=clean.title, body=clean.body, attributes=clean.snapshot(),
                     editor=author, created_at=now)
    )
    session.add(note)
    session.flush()
    digests.record_event(session, "note", note, actor=author)
    notifications.note_posted(session, note)
    if request_acknowledgement:
        acknowledgements.request_acknowledgement(session, note, author)
    return note


def edit_note(session: Session, note: Note, editor: User, data: dict) -> Note:
    """Save a new revision of the note; earlier revisions stay viewable. An unchanged save adds none."""
    auth.require_author_or_moderator(session, editor, note.author_id, note.channel)
    clean = validate(session, note.kind, data)
    latest = note.revisions[-1]
    if (clean.title, clean.body, clean.snapshot()) == (latest.title, latest.body, latest.attributes):
        return note
    old_status = note.case_status
    _apply(note, clean)
    if note.case_status != old_status:
        digests.record_event(session, "case_status", note, actor=editor, **{"from": old_status, "to": note.case_status})
    note.revision += 1
    note.updated_at = utcnow()
    note.revisions.append(
        NoteRevision(number=note.revision, title=clean.title, body=clean.body,
                     attributes=clean.snapshot(), editor=editor)
    )
    audit.record(session, editor, "note.edit", "note", note.id, revision=note.revision)
    return note


def form_values(note: Note) -> dict:
    """The note's current values as the compose form shows them."""
    latest = note.revisions[-1].attributes
    return {
        "title": note.title,
        "body": note.body,
        "lang": note.lang,
        "marking": note.marking,
        "topics": latest.get("topics", []),
        "articles": "; ".join(latest.get("articles", [])),
        "case_reference": note.case_reference,
        "platforms": note.platforms,
        "legal_basis": note.legal_basis,
        "case_status": note.case_status or "open",
        "answer_by": note.answer_by.isoformat() if note.answer_by else "",
        "milestones": "\n".join(latest.get("milestones", [])),
    }


def delete_note(session: Session, note: Note, actor: User) -> None:
    """Soft-delete: hidden from everyone but admins, kept for audit and restorable."""
    auth.require_author_or_moderator(session, actor, note.author_id, note.channel)
    note.deleted_at, note.deleted_by_id = utcnow(), actor.id
    audit.record(session, actor, "note.delete", "note", note.id)


def restore_note(session: Session, note: Note, actor: User) -> None:
    if not actor.is_admin:
        raise Forbidden(_l("Only an administrator may restore a deleted note."))
    note.deleted_at, note.deleted_by_id = None, None
    audit.record(session, actor, "note.restore", "note", note.id)


def set_case_status(session: Session, note: Note, actor: User, status: str) -> None:
    """Move a case to another status; the change is a revision like any edit."""
    if note.kind != "case":
        raise ValidationError(_l("Only cases have a status."))
    if status not in CASE_STATUSES:
        raise ValidationError({"case_status": _l("Unknown case status.")})
    edit_note(session, note, actor, {**form_values(note), "case_status": status})


def accept_answer(session: Session, note: Note, reply: Reply, actor: User) -> None:
    """Mark a reply as the accepted answer: the asker or a moderator may."""
    if note.kind != "question":
        raise ValidationError(_l("Only questions have answers."))
    auth.require_author_or_moderator(session, actor, note.author_id, note.channel)
    if reply.note_id != note.id or reply.is_deleted:
        raise ValidationError(_l("That reply is not part of this question."))
    note.accepted_reply_id, note.question_state = reply.id, "answered"
    note.declined_grounds = ""
    note.last_activity_at = utcnow()
    audit.record(session, actor, "question.accept", "note", note.id, reply_id=reply.id)
    digests.record_event(session, "answered", note, reply=reply, actor=actor)
    notifications.answer_accepted(session, note, reply, actor)


def decline_question(session: Session, note: Note, actor: User, grounds: str) -> None:
    """The addressed side (or a moderator) declines to answer, stating why."""
    if note.kind != "question":
        raise ValidationError(_l("Only questions can be declined."))
    auth.require_writable(note.channel)
    if actor.side != note.addressed_side and not auth.moderates(session, actor, note.channel):
        raise Forbidden(_l("Only the side the question is addressed to may decline it."))
    grounds = grounds.strip()
    if not grounds:
        raise ValidationError({"grounds": _l("State the grounds for declining.")})
    note.question_state, note.declined_grounds, note.accepted_reply_id = "declined", grounds[:5000], None
    note.last_activity_at = utcnow()
    audit.record(session, actor, "question.decline", "note", note.id)
    digests.record_event(session, "declined", note, actor=actor)


def reopen_question(session: Session, note: Note, actor: User) -> None:
    if note.kind != "question":
        raise ValidationError(_l("Only questions can be reopened."))
    auth.require_author_or_moderator(session, actor, note.author_id, note.channel)
    note.question_state, note.accepted_reply_id, note.declined_grounds = "open", None, ""
    audit.record(session, actor, "question.reopen", "note", note.id)


# Beyond any real channel; keeps an absurd ?page= inside the database's integer range.
MAX_PAGE = 100_000


def channel_notes(
    session: Session, channel: Channel, *, kind: str | None = None, page: int = 1, per_page: int = 30
) -> tuple[list[Note], bool]:
    """A page of the channel's live notes, most recently active first, and whether more follow."""
    query = select(Note).where(Note.channel_id == channel.id, Note.deleted_at.is_(None))
    if kind in KINDS:
        query = query.where(Note.kind == kind)
    rows = list(
        session.scalars(
            query.order_by(Note.last_activity_at.desc(), Note.id.desc())
            .limit(per_page + 1)
            .offset((min(max(page, 1), MAX_PAGE) - 1) * per_page)
        )
    )
    return rows[:per_page], len(rows) > per_page


def deleted_notes(session: Session, user: User) -> list[Note]:
    """Soft-deleted notes in channels this admin may see, for restoring."""
    return list(
        session.scalars(
            select(Note)
            .join(Channel, Note.channel_id == Channel.id)
            .where(Note.deleted_at.is_not(None), auth.channel_is_visible(user))
            .order_by(Note.deleted_at.desc())
        )
    )


@dataclass
class DiffLine:
    op: str  # "same", "add" or "del"
    text: str


def diff(old: str, new: str) -> list[DiffLine]:
    """A line diff of two texts for the history page."""
    lines: list[DiffLine] = []
    a, b = old.splitlines(), new.splitlines()
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_opcodes():
        if tag == "equal":
            lines += [DiffLine("same", line) for line in a[i1:i2]]
        else:
            lines += [DiffLine("del", line) for line in a[i1:i2]]
            lines += [DiffLine("add", line) for line in b[j1:j2]]
    return lines


def revision_diffs(note: Note) -> list[tuple[NoteRevision, list[DiffLine], list[str]]]:
    """Each revision with its body diff and changed attributes against the one before, newest first."""
    return history_diffs(note.revisions)


def history_diffs(revisions: list) -> list[tuple]:
    """Revisions (with title, body and attributes) each with its diff against the one before, newest first."""
    result = []
    previous = None
    for revision in revisions:
        old_body = previous.body if previous else ""
        old_title = previous.title if previous else ""
        old_attrs = previous.attributes if previous else {}
        changed = [key for key, value in revision.attributes.items() if old_attrs.get(key) != value]
        if previous and old_title != revision.title:
            changed.insert(0, "title")
        result.append((revision, diff(old_body, revision.body) if previous else [], changed if previous else []))
        previous = revision
    return list(reversed(result))


def notes_after(
    session: Session, user: User, *, channel: Channel | None = None, kind: str | None = None,
    after: tuple[datetime, int] | None = None, limit: int = 30,
) -> tuple[list[Note], bool]:
    """Live notes this user may see (in one channel, of one kind), most recently active first, from
    after a (last_activity_at, id) key onwards, and whether more follow: the API's keyset pages."""
    query = auth.visible_notes(user)
    if channel is not None:
        query = query.where(Note.channel_id == channel.id)
    if kind in KINDS:
        query = query.where(Note.kind == kind)
    if after is not None:
        activity, note_id = after
        query = query.where((Note.last_activity_at < activity)
                            | ((Note.last_activity_at == activity) & (Note.id < note_id)))
    query = query.options(selectinload(Note.topics), selectinload(Note.citations), selectinload(Note.milestones))
    rows = list(session.scalars(query.order_by(Note.last_activity_at.desc(), Note.id.desc()).limit(limit + 1)))
    return rows[:limit], len(rows) > limit
