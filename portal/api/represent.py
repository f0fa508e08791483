"""Models as the API shows them: exactly the shapes of the OpenAPI document's schemas."""
from __future__ import annotations

from datetime import date, datetime

from flask import current_app, url_for

from portal.models import ApiToken, Channel, Note, Notification, Reply, Subscription, User


def moment(value: datetime | None) -> str | None:
    """Stored times are naive UTC; the API writes them as RFC 3339 with a Z."""
    return value.isoformat(timespec="seconds") + "Z" if value else None


def link(path: str) -> str:
    """A web page's address at the portal's public base URL, whatever Host the request named."""
    return current_app.config["BASE_URL"].rstrip("/") + path


def author(user: User) -> dict:
    return {"id": user.id, "name": user.name, "organisation": user.organisation.slug, "side": user.side}


def me(user: User, token: ApiToken) -> dict:
    return {
        "id": user.id, "email": user.email, "name": user.name, "role": user.role, "lang": user.lang,
        "side": user.side, "organisation": {"slug": user.organisation.slug, "name": user.organisation.name},
        "token": {"id": token.id, "prefix": token.prefix, "scope": token.scope, "expires_at": moment(token.expires_at)},
    }


def channel(item: Channel) -> dict:
    return {
        "id": item.id, "slug": item.slug, "name_en": item.name_en, "name_ja": item.name_ja,
        "description_en": item.description_en, "description_ja": item.description_ja,
        "visibility": item.visibility, "is_archived": item.is_archived,
    }


def note(item: Note, today: date) -> dict:
    return {
        "id": item.id, "external_id": item.external_id, "channel": item.channel.slug, "kind": item.kind,
        "title": item.title, "body": item.body, "body_html": item.body_html, "lang": item.lang,
        "marking": item.marking, "topics": [topic.slug for topic in item.topics],
        "articles": [citation.label for citation in item.citations], "author": author(item.author),
        "case_reference": item.case_reference, "platforms": item.platforms, "legal_basis": item.legal_basis,
        "case_status": item.case_status,
        "milestones": [{"due_on": m.due_on.isoformat(), "label": m.label} for m in item.milestones],
        "addressed_side": item.addressed_side,
        "answer_by": item.answer_by.isoformat() if item.answer_by else None,
        "question_status": item.question_status(today), "accepted_reply_id": item.accepted_reply_id,
        "declined_grounds": item.declined_grounds, "revision": item.revision, "reply_count": item.reply_count,
        "created_at": moment(item.created_at), "updated_at": moment(item.updated_at),
        "last_activity_at": moment(item.last_activity_at),
        "url": link(url_for("notes.show", note_id=item.id)),
    }


def reply(item: Reply) -> dict:
    live = not item.is_deleted
    return {
        "id": item.id, "note_id": item.note_id, "parent_id": item.parent_id, "depth": item.depth,
        "is_deleted": not live, "author": author(item.author) if live else None,
        "body": item.body if live else None, "body_html": item.body_html if live else None,
        "revision": item.revision, "created_at": moment(item.created_at), "updated_at": moment(item.updated_at),
    }


def subscription(item: Subscription) -> dict:
    return {
        "id": item.id, "target": item.target, "topic": item.topic.slug if item.topic else None,
        "channel": item.channel.slug if item.channel else None, "note_id": item.note_id,
        "frequency": item.frequency, "is_muted": item.is_muted, "created_at": moment(item.created_at),
    }


def notification(item: Notification) -> dict:
    return {
        "id": item.id, "kind": item.kind, "note_id": item.note_id, "note_title": item.note.title,
        "reply_id": item.reply_id, "actor": author(item.actor) if item.actor else None,
        "is_read": item.is_read, "read_at": moment(item.read_at), "created_at": moment(item.created_at),
        "url": link(url_for("notes.show", note_id=item.note_id,
                            _anchor=f"reply-{item.reply_id}" if item.reply_id else None)),
    }
