from __future__ import annotations

from datetime import datetime

from flask import Blueprint, request, url_for

from portal import auth
from portal.api import http, represent
from portal.api.search import SORTS, listing_of, search_page
from portal.db import get_session
from portal.errors import ValidationError
from portal.models import Channel
from portal.models.notes import KINDS
from portal.services import notes, replies
from portal.views import rate_limit

bp = Blueprint("notes", __name__)


def _note_list(channel: Channel | None):
    """A page of notes: most recently active first (keyset cursor), or with q, a search over notes."""
    kind = http.choice_arg("kind", KINDS)
    query = request.args.get("q", "").strip() if channel is None else ""
    if query:
        sort = http.choice_arg("sort", SORTS, "relevance")
        typed = f"{query} kind:{kind}" if kind else query
        result, cursor = search_page(typed, sort=sort, listing=listing_of("notes", typed, sort), only_notes=True)
        items = [item.note for item in result.items if item.note is not None]
        return http.respond({"items": [represent.note(n, http.today()) for n in items], "next_cursor": cursor})
    limit = http.int_arg("limit", 30, 1, 100)
    listing = f"notes:{channel.id if channel else '*'}:{kind or '*'}"
    position = http.read_cursor(listing)
    after = None
    if position is not None:
        try:
            after = (datetime.fromisoformat(position[0]), int(position[1]))
        except (TypeError, ValueError, IndexError):
            raise http.bad_cursor() from None
    rows, more = notes.notes_after(get_session(), http.reader(), channel=channel, kind=kind, after=after, limit=limit)
    cursor = http.make_cursor(listing, [rows[-1].last_activity_at.isoformat(), rows[-1].id]) if more else None
    return http.respond({"items": [represent.note(n, http.today()) for n in rows], "next_cursor": cursor})


@bp.get("/notes")
def index():
    return _note_list(None)


@bp.get("/channels/<slug>/notes")
def channel_index(slug: str):
    return _note_list(auth.channel_for(get_session(), http.reader(), slug))


def _created(data: dict, endpoint: str, **values):
    return http.respond(data, 201, {"Location": url_for(endpoint, **values)})


@bp.post("/channels/<slug>/notes")
def create(slug: str):
    db, user = get_session(), http.reader()
    channel = auth.channel_for(db, user, slug)
    auth.require_writable(channel)
    data = http.json_body("NoteCreate")
    rate_limit("post", str(user.id), commit=False)
    kind, asked = data.pop("kind"), data.pop("request_acknowledgement", False)
    note = notes.post_note(db, channel, user, kind, data, request_acknowledgement=asked)
    db.commit()
    return _created(represent.note(note, http.today()), "api.notes.show", note_id=note.id)


def _writable_note(note_id: int):
    """The note for a change: visible (404), the author's or moderated (403), and as read (428/412)."""
    db, user = get_session(), http.reader()
    note = auth.note_for(db, user, note_id)
    auth.require_author_or_moderator(db, user, note.author_id, note.channel)
    http.require_current(represent.note(note, http.today()))
    return note


@bp.get("/notes/<id:note_id>")
def show(note_id: int):
    return http.respond(represent.note(auth.note_for(get_session(), http.reader(), note_id), http.today()))


@bp.patch("/notes/<id:note_id>")
def edit(note_id: int):
    db = get_session()
    note = _writable_note(note_id)
    changes = http.json_body("NoteChange")
    rate_limit("post", str(http.reader().id), commit=False)
    notes.edit_note(db, note, http.reader(), {**notes.form_values(note), **changes})
    db.commit()
    return http.respond(represent.note(note, http.today()))


@bp.delete("/notes/<id:note_id>")
def delete(note_id: int):
    db = get_session()
    notes.delete_note(db, _writable_note(note_id), http.reader())
    db.commit()
    return "", 204


@bp.get("/notes/<id:note_id>/replies")
def thread(note_id: int):
    db = get_session()
    note = auth.note_for(db, http.reader(), note_id)
    return http.respond({"items": [represent.reply(reply) for reply in replies.whole_thread(db, note)]})


@bp.post("/notes/<id:note_id>/replies")
def reply(note_id: int):
    db, user = get_session(), http.reader()
    note = auth.note_for(db, user, note_id)
    auth.require_writable(note.channel)
    data = http.json_body("ReplyCreate")
    try:
        parent = replies.reply_in_note(db, note, data.get("parent_id"))
    except ValidationError as error:
        raise http.Problem(422, str(error), {"parent_id": str(error)}) from None
    rate_limit("post", str(user.id), commit=False)
    posted = replies.post_reply(db, note, user, data["body"], parent=parent)
    db.commit()
    return _created(represent.reply(posted), "api.notes.show_reply", reply_id=posted.id)


@bp.get("/replies/<id:reply_id>")
def show_reply(reply_id: int):
    return http.respond(represent.reply(auth.reply_for(get_session(), http.reader(), reply_id)))


@bp.patch("/replies/<id:reply_id>")
def edit_reply(reply_id: int):
    db, user = get_session(), http.reader()
    found = auth.reply_for(db, user, reply_id)
    auth.require_author_or_moderator(db, user, found.author_id, found.note.channel)
    http.require_current(represent.reply(found))
    body = http.json_body("ReplyChange")["body"]
    rate_limit("post", str(user.id), commit=False)
    replies.edit_reply(db, found, user, body)
    db.commit()
    return http.respond(represent.reply(found))
