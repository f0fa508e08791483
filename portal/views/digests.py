from __future__ import annotations

from datetime import date, timedelta

from flask import Blueprint, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from portal import auth, i18n
from portal.db import get_session, utcnow
from portal.errors import ValidationError
from portal.extensions import csrf
from portal.services import digests, notes, subscriptions
from portal.views import atom, require_sign_in

bp = Blueprint("digests", __name__)
FEED_DAYS = 7


@bp.get("/digest")
def show():
    if (refused := require_sign_in()) is not None:
        return refused
    db = get_session()
    frequency = request.args.get("period", "weekly")
    error = None
    if frequency not in digests.PERIOD:
        frequency, error = "weekly", _("The period is daily or weekly.")
    try:
        day = date.fromisoformat(request.args.get("date") or i18n.today().isoformat())
    except ValueError:
        day, error = i18n.today(), _("'%(value)s' is not a date; use YYYY-MM-DD.", value=request.args.get("date"))
    since, until = digests.period_around(frequency, day)
    digest = digests.personal_digest(db, current_user, since, until)
    return render_template(
        "digests/show.html", digest=digest, frequency=frequency, day=day, error=error,
        read_until=digests.read_until(db, current_user), step=digests.PERIOD[frequency],
    ), 400 if error else 200


@bp.post("/digest/read")
def mark_read():
    if (refused := require_sign_in()) is not None:
        return refused
    db = get_session()
    digests.mark_read(db, current_user)
    db.commit()
    return redirect(url_for("digests.show", period=request.form.get("period"), date=request.form.get("date")))


@bp.get("/feeds/<token>/digest.atom")
def digest_feed(token: str):
    db = get_session()
    reader = subscriptions.user_for_feed_token(db, token)
    now = utcnow()
    digest = digests.personal_digest(db, reader, now - timedelta(days=FEED_DAYS), now)
    with i18n.as_reader(reader):  # a feed reader has no session: the token's owner is the reader
        return atom(_("Digest: %(summary)s", summary=digest.summary()), url_for("digests.show", _external=True),
                    digests.digest_entries(digest), now)


@bp.get("/feeds/<token>/channels/<slug>.atom")
def channel_feed(token: str, slug: str):
    db = get_session()
    reader = subscriptions.user_for_feed_token(db, token)
    channel = auth.channel_for(db, reader, slug)
    rows, _ = notes.channel_notes(db, channel, per_page=50)
    with i18n.as_reader(reader):
        return atom(channel.name(reader.lang), url_for("channels.show", slug=channel.slug, _external=True),
                    digests.note_entries(rows), channel.created_at)


@bp.get("/feeds/<token>/topics/<slug>.atom")
def topic_feed(token: str, slug: str):
    db = get_session()
    reader = subscriptions.user_for_feed_token(db, token)
    topic, rows = digests.topic_notes(db, reader, slug)
    with i18n.as_reader(reader):
        return atom(topic.label(reader.lang), url_for("search.index", q=f"topic:{topic.slug}", _external=True),
                    digests.note_entries(rows), utcnow())


@bp.route("/unsubscribe/<token>", methods=["GET", "POST"])
@csrf.exempt  # RFC 8058: mail providers POST here without a form of ours; the signed token is the proof.
def unsubscribe(token: str):
    db = get_session()
    try:
        if request.method == "POST":
            muted = subscriptions.unsubscribe(db, token)
            db.commit()
        else:
            muted = subscriptions.unsubscribe_targets(db, token)
    except ValidationError as error:
        return render_template("digests/unsubscribe.html", invalid=str(error)), 400
    return render_template("digests/unsubscribe.html", subscriptions=muted, done=request.method == "POST",
                           describe=subscriptions.describe)
