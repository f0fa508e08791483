from __future__ import annotations

from flask import Blueprint

from portal.api import http, represent
from portal.db import get_session
from portal.errors import ValidationError
from portal.services import subscriptions

bp = Blueprint("subscriptions", __name__)

TARGETS = ("topic", "channel", "note_id")


@bp.get("/subscriptions")
def index():
    rows = subscriptions.for_user(get_session(), http.reader())
    return http.respond({"items": [represent.subscription(item) for item in rows]})


@bp.post("/subscriptions")
def create():
    """Follow a topic, a channel or a note, or with none of them everything: as the web form does."""
    db, user = get_session(), http.reader()
    data = http.json_body("SubscriptionCreate")
    try:
        subscription = subscriptions.subscribe(db, user, **data)
    except ValidationError as error:
        # The service names the web form's "note" field (the API's is note_id), and refuses two
        # targets at once without a field: those are the fields sent.
        errors = {}
        for key, value in error.errors.items():
            for field in [name for name in TARGETS if name in data] if key == "_" else [key]:
                errors["note_id" if field == "note" else field] = str(value)
        raise http.Problem(422, "; ".join(errors.values()), errors) from None
    db.commit()
    return http.respond(represent.subscription(subscription), 201)


@bp.delete("/subscriptions/<id:subscription_id>")
def delete(subscription_id: int):
    db, user = get_session(), http.reader()
    subscriptions.remove(db, subscriptions.subscription_for(db, user, subscription_id), actor=user)
    db.commit()
    return "", 204
