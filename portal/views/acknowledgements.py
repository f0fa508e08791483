from __future__ import annotations

from flask import Blueprint, flash, redirect, url_for
from flask_babel import gettext as _
from flask_login import current_user

from portal import auth
from portal.db import get_session
from portal.errors import ValidationError
from portal.services import acknowledgements
from portal.views import require_sign_in

bp = Blueprint("acknowledgements", __name__)
bp.before_request(require_sign_in)


def _act(note_id: int, action, message: str):
    db = get_session()
    note = auth.note_for(db, current_user, note_id)
    try:
        action(db, note, current_user)
    except ValidationError as error:
        flash(str(error.errors.get("request_acknowledgement") or error), "error")
    else:
        db.commit()
        flash(message)
    return redirect(url_for("notes.show", note_id=note.id, _anchor="acknowledgement"))


@bp.post("/notes/<id:note_id>/acknowledgement-request")
def request_acknowledgement(note_id: int):
    return _act(note_id, acknowledgements.request_acknowledgement, _("The other side is asked to acknowledge this note."))


@bp.post("/notes/<id:note_id>/acknowledge")
def acknowledge(note_id: int):
    return _act(note_id, acknowledgements.acknowledge, _("You acknowledged this note."))
