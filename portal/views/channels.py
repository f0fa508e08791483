from __future__ import annotations

from flask import Blueprint, abort, current_app, redirect, render_template, request, url_for
from flask_login import current_user

from portal import auth
from portal.db import get_session
from portal.errors import ValidationError
from portal.models.notes import KINDS
from portal.services import acknowledgements, channels, content, notes
from portal.views import require_sign_in

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
    errors = {}
    values = {"lang": current_user.lang, "marking": "limited", "case_status": "open"}
    if request.method == "POST":
        values = form_dict()
        try:
            note = notes.post_note(db, channel, current_user, kind, values)
            if values.get("request_acknowledgement"):
                acknowledgements.request_acknowledgement(db, note, current_user)
        except ValidationError as error:
            db.rollback()
            errors = error.errors
        else:
            db.commit()
            return redirect(url_for("notes.show", note_id=note.id))
    return render_template(
        "notes/form.html", channel=channel, kind=kind, values=values, errors=errors, note=None,
        topics=content.topics(db),
    ), 400 if errors else 200


@bp.get("/channels/<slug>/feed.atom")
def feed(slug: str):
    db = get_session()
    channel = auth.channel_for(db, current_user, slug)
    rows, _ = notes.channel_notes(db, channel, per_page=50)
    body = render_template("channels/feed.xml", channel=channel, notes=rows)
    return body, 200, {"Content-Type": "application/atom+xml; charset=utf-8"}


def form_dict() -> dict:
    """The submitted form as the services take it (topics may be ticked several times)."""
    values = request.form.to_dict()
    values.pop("csrf_token", None)
    values["topics"] = request.form.getlist("topics")
    return values
