from __future__ import annotations

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask_babel import ngettext
from flask_login import current_user

from portal.db import get_session
from portal.services import notifications
from portal.views import require_sign_in

bp = Blueprint("notifications", __name__)
bp.before_request(require_sign_in)


@bp.get("/notifications")
def index():
    number = request.args.get("page", 1, type=int) or 1
    rows, more = notifications.page(get_session(), current_user, number=number,
                                    per_page=current_app.config["PAGE_SIZE"])
    return render_template("notifications/index.html", notifications=rows, page=number, more=more)


@bp.post("/notifications/<id:notification_id>", endpoint="open")
def open_one(notification_id: int):
    """Follow a notification to the note or reply it is about, marking it read on the way.

    A POST (a button in the list): a GET must change nothing, since other sites can trigger GETs.
    """
    db = get_session()
    notification = notifications.open_notification(db, current_user, notification_id)
    db.commit()
    anchor = f"reply-{notification.reply_id}" if notification.reply_id else None
    return redirect(url_for("notes.show", note_id=notification.note_id, _anchor=anchor))


@bp.post("/notifications/read")
def mark_all_read():
    db = get_session()
    count = notifications.mark_all_read(db, current_user)
    db.commit()
    flash(ngettext("%(num)d notification marked read.", "%(num)d notifications marked read.", count))
    return redirect(url_for("notifications.index"))
