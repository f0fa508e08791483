from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_babel import ngettext
from flask_login import current_user

from portal.db import get_session
from portal.services import sessions
from portal.views import require_sign_in

bp = Blueprint("sessions", __name__, url_prefix="/account/sessions")
bp.before_request(require_sign_in)


@bp.get("")
def index():
    rows = sessions.list_for(get_session(), current_user)
    return render_template("sessions/index.html", rows=rows,
                           current=[row for row in rows if sessions.is_current(row, current_user.session_key)])


@bp.post("/<id:session_id>/end")
def end(session_id: int):
    db = get_session()
    sessions.end_one(db, current_user, session_id)
    db.commit()
    flash(_("That session was ended."))
    return redirect(url_for("sessions.index"))


@bp.post("/end-others")
def end_others():
    db = get_session()
    count = sessions.end_others(db, current_user, keep_key=current_user.session_key)
    db.commit()
    flash(ngettext("Signed out of %(num)d other session.", "Signed out of %(num)d other sessions.", count))
    return redirect(url_for("sessions.index"))
