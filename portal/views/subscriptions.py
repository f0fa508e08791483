from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from portal.db import get_session
from portal.errors import ValidationError
from portal.models.digests import FREQUENCIES
from portal.services import channels, content, subscriptions
from portal.views import require_sign_in

bp = Blueprint("subscriptions", __name__)
bp.before_request(require_sign_in)


def _page(values: dict, errors: dict, status: int = 200, feed_token: str | None = None):
    db = get_session()
    return render_template(
        "subscriptions/index.html", subscriptions=subscriptions.for_user(db, current_user),
        describe=subscriptions.describe, values=values, errors=errors, frequencies=FREQUENCIES,
        topics=content.topics(db), channels=[c for c, _ in channels.list_for(db, current_user)],
        has_feed_token=subscriptions.has_feed_token(db, current_user), feed_token=feed_token,
    ), status


@bp.route("/subscriptions", methods=["GET", "POST"])
def index():
    if request.method == "GET":
        return _page({"target": "topic", "frequency": "daily"}, {})
    values = request.form.to_dict()
    target = values.get("target", "")
    choice = {"topic": {"topic": values.get("topic", "")}, "channel": {"channel": values.get("channel", "")},
              "note": {"note_id": values.get("note", "")}, "all": {}}.get(target)
    db = get_session()
    try:
        if choice is None:
            raise ValidationError({"target": _("Choose what to follow: everything, a topic, a channel or a note.")})
        if "note_id" in choice:
            if not choice["note_id"].strip().isdigit():
                raise ValidationError({"note": _("Give the note's number, as in /notes/123.")})
            choice["note_id"] = int(choice["note_id"])
        subscriptions.subscribe(db, current_user, frequency=values.get("frequency", ""), **choice)
    except ValidationError as error:
        db.rollback()
        return _page(values, error.errors, 400)
    db.commit()
    flash(_("Subscribed."))
    return redirect(url_for("subscriptions.index"))


@bp.post("/subscriptions/<id:subscription_id>/mute")
def mute(subscription_id: int):
    db = get_session()
    subscription = subscriptions.subscription_for(db, current_user, subscription_id)
    subscriptions.set_muted(db, subscription, not subscription.is_muted, actor=current_user)
    db.commit()
    flash(_("Muted.") if subscription.is_muted else _("Unmuted."))
    return redirect(url_for("subscriptions.index"))


@bp.post("/subscriptions/<id:subscription_id>/delete")
def delete(subscription_id: int):
    db = get_session()
    subscriptions.remove(db, subscriptions.subscription_for(db, current_user, subscription_id), actor=current_user)
    db.commit()
    flash(_("Subscription removed."))
    return redirect(url_for("subscriptions.index"))


@bp.post("/subscriptions/feed-token")
def feed_token():
    db = get_session()
    token = subscriptions.issue_feed_token(db, current_user)
    db.commit()
    # Shown once, in this response: only its hash is stored.
    return _page({"target": "topic", "frequency": "daily"}, {}, feed_token=token)


@bp.post("/subscriptions/feed-token/revoke")
def revoke_feed_token():
    db = get_session()
    revoked = subscriptions.revoke_feed_token(db, current_user)
    db.commit()
    flash(_("Your feed links no longer work.") if revoked else _("You had no feed links."))
    return redirect(url_for("subscriptions.index"))
