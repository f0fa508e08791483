from __future__ import annotations

from flask import Blueprint, redirect, render_template, request, url_for
from flask_login import current_user

from portal import auth
from portal.db import get_session
from portal.errors import ValidationError
from portal.services import translations
from portal.views import require_sign_in

bp = Blueprint("translations", __name__)
bp.before_request(require_sign_in)


@bp.route("/notes/<id:note_id>/translation", methods=["GET", "POST"])
def edit(note_id: int):
    """Add the note's version in the other language, or revise it."""
    db = get_session()
    note = auth.note_for(db, current_user, note_id)
    auth.require_translator(db, current_user, note)
    errors = {}
    values = translations.form_values(note)
    if request.method == "POST":
        values = {key: request.form.get(key, "") for key in ("title", "body", "status")}
        try:
            translations.save_translation(db, note, current_user, values)
        except ValidationError as error:
            errors = error.errors
        else:
            db.commit()
            return redirect(url_for("notes.show", note_id=note.id))
    return render_template(
        "translations/form.html", note=note, lang=translations.other_lang(note), values=values, errors=errors,
    ), 400 if errors else 200


@bp.get("/notes/<id:note_id>/translation/history")
def history(note_id: int):
    db = get_session()
    note = auth.note_for(db, current_user, note_id)
    if note.translation is None:
        return redirect(url_for("notes.history", note_id=note.id))
    return render_template("translations/history.html", note=note, translation=note.translation,
                           revisions=translations.revision_diffs(note.translation))
