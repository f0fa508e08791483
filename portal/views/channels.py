from __future__ import annotations

from flask import Blueprint, abort, current_app, redirect, render_template, request, url_for
from flask_login import current_user
from markupsafe import Markup

from portal import auth
from portal.db import get_session
from portal.errors import RateLimited, ValidationError
from portal.markup import render_markdown
from portal.models.notes import KINDS
from portal.services import channels, content, digests, notes
from portal.views import atom, rate_limit, require_sign_in

bp = Blueprint("channels", __name__)
bp.before_request(require_sign_in)


@bp.get("/channels")
def index():
    return render_template("channels/index.html", channels=channels.list_for(get_session(), current_user))


@bp.get("/channels/<slug>")
def show(slug: str):
    db = get_session()
    channel = auth.channel_for(db, current_user, slug)
    kind = request.args.get("kind") if request.args.get("kind") in KINDS else None
    page = request.args.get("page", 1, type=int) or 1
    rows, more = notes.channel_notes(
        db, channel, kind=kind, page=page, per_page=current_app.config["PAGE_SIZE"]
    )
    return render_template(
        "channels/show.html", channel=channel, notes=rows, kind=kind, page=page, more=more,
        can_post=not channel.is_archived, moderators=[m for m in channels.members(db, channel) if m.is_moderator],
    )


@bp.route("/channels/<slug>/new/<kind>", methods=["GET", "POST"])
def compose(slug: str, kind: str):
    db = get_session()
    channel = auth.channel_for(db, current_user, slug)
    if kind not in KINDS:
        abort(404)
    auth.require_writable(channel)
    return note_form(
        db, lambda values: notes.post_note(db, channel, current_user, kind, values,
                                           request_acknowledgement=bool(values.get("request_acknowledgement"))),
        values={"lang": current_user.lang, "marking": "limited", "case_status": "open"},
        channel=channel, kind=kind,
    )


@bp.get("/channels/<slug>/feed.atom")
def feed(slug: str):
    db = get_session()
    channel = auth.channel_for(db, current_user, slug)
    rows, _ = notes.channel_notes(db, channel, per_page=50)
    return atom(channel.name(current_user.lang), url_for("channels.show", slug=channel.slug, _external=True),
                digests.note_entries(rows), channel.created_at)


def note_form(db, save, *, values: dict, channel, kind: str, note=None):
    """The compose form, for a new note and an edit alike: its Preview button shows the body as it will
    look and saves nothing; its Save button calls save(values) and goes to the note it returns."""
    errors, preview = {}, None
    status, headers = 200, {}
    if request.method == "POST":
        values, preview = form_dict(), preview_of(request.form)
    if request.method == "POST" and preview is None:
        try:
            rate_limit("post", str(current_user.id), commit=False)
            saved = save(values)
        except RateLimited as limited:
            db.rollback()
            errors, status, headers = {"_": str(limited)}, 429, limited.headers
        except ValidationError as error:
            # Nothing half-saved: a note whose acknowledgement request is refused is not kept either.
            db.rollback()
            errors, status = error.errors, 400
        else:
            db.commit()
            return redirect(url_for("notes.show", note_id=saved.id))
    return render_template(
        "notes/form.html", channel=channel, kind=kind, values=values, errors=errors, note=note,
        topics=content.topics(db), preview=preview,
    ), status, headers


def preview_of(form) -> Markup | None:
    """The body as it will look, when the form was sent with its Preview button (nothing is saved)."""
    if not form.get("preview"):
        return None
    return Markup(render_markdown(form.get("body", "")))


def form_dict() -> dict:
    """The submitted form as the services take it (topics may be ticked several times)."""
    values = request.form.to_dict()
    values.pop("csrf_token", None)
    values["topics"] = request.form.getlist("topics")
    return values
