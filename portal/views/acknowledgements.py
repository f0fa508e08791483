from __future__ import annotations

from flask import Blueprint
from flask_babel import gettext as _
from flask_login import current_user

from portal.services import acknowledgements
from portal.views import require_sign_in
from portal.views.notes import act_on_note

bp = Blueprint("acknowledgements", __name__)
bp.before_request(require_sign_in)


@bp.post("/notes/<id:note_id>/acknowledgement-request")
def request_acknowledgement(note_id: int):
    return act_on_note(
        note_id, lambda db, note: acknowledgements.request_acknowledgement(db, note, current_user),
        _("The other side is asked to acknowledge this note."), anchor="acknowledgement",
    )


@bp.post("/notes/<id:note_id>/acknowledge")
def acknowledge(note_id: int):
    return act_on_note(note_id, lambda db, note: acknowledgements.acknowledge(db, note, current_user),
                       _("You acknowledged this note."), anchor="acknowledgement")
