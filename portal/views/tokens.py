from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from portal.db import get_session, utcnow
from portal.errors import ValidationError
from portal.models.tokens import SCOPES
from portal.services import tokens
from portal.views import require_sign_in

bp = Blueprint("tokens", __name__)
bp.before_request(require_sign_in)


BLANK_FORM = {"name": "", "scope": "read", "days": str(tokens.DEFAULT_DAYS)}


@bp.route("/account/tokens", methods=["GET", "POST"])
def index():
    """The user's API tokens; a new one is shown on this response only and never again."""
    db = get_session()
    errors, created, values = {}, None, dict(BLANK_FORM)
    if request.method == "POST":
        values = {key: request.form.get(key, "").strip() for key in values}
        days = int(values["days"]) if values["days"].isdigit() else 0
        try:
            token, text = tokens.create_token(db, current_user, scope=values["scope"], days=days,
                                              name=values["name"], actor=current_user)
        except ValidationError as error:
            errors = error.errors
        else:
            db.commit()
            created = (token, text)
            values = dict(BLANK_FORM)
    return render_template(
        "tokens/index.html", tokens=tokens.tokens_of(db, current_user), created=created, errors=errors,
        values=values, scopes=SCOPES, now=utcnow(), max_days=tokens.MAX_DAYS,
    ), 400 if errors else 200


@bp.post("/account/tokens/<id:token_id>/revoke")
def revoke(token_id: int):
    db = get_session()
    token = tokens.own_token(db, current_user, token_id)
    tokens.revoke_token(db, token, actor=current_user)
    db.commit()
    flash(_("The token %(prefix)s is revoked; requests made with it now get 401.", prefix=token.prefix))
    return redirect(url_for("tokens.index"))
