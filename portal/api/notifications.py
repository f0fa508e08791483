from __future__ import annotations

from flask import Blueprint

from portal.api import http, represent
from portal.db import get_session
from portal.services import notifications

bp = Blueprint("notifications", __name__)


@bp.get("/notifications")
def index():
    """The owner's notifications that they may still see, newest first (keyset cursor on the id)."""
    limit = http.int_arg("limit", 30, 1, 100)
    position = http.read_cursor("notifications")
    if position is not None and not isinstance(position, int):
        raise http.bad_cursor()
    rows, more = notifications.before(get_session(), http.reader(), before_id=position, limit=limit)
    cursor = http.make_cursor("notifications", rows[-1].id) if more else None
    return http.respond({"items": [represent.notification(item) for item in rows], "next_cursor": cursor})


@bp.post("/notifications/<id:notification_id>/read")
def read(notification_id: int):
    db = get_session()
    notification = notifications.open_notification(db, http.reader(), notification_id)
    db.commit()
    return http.respond(represent.notification(notification))


@bp.post("/notifications/read-all")
def read_all():
    db = get_session()
    count = notifications.mark_all_read(db, http.reader())
    db.commit()
    return http.respond({"marked": count})
