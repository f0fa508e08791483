from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_login import current_user

from portal.db import get_session, utcnow
from portal.errors import NotFound, ValidationError
from portal.services import twofactor
from portal.views.auth import begin_session, finish_sign_in, pending_sign_in, sign_in_attempt

bp = Blueprint("twofactor", __name__)

# The secret being enrolled, kept in the signed cookie until a first code confirms it.
ENROLLING = "enrolling_totp"


@bp.route("/login/code", methods=["GET", "POST"])
def code():
    """The second step of signing in: a code from the authenticator app, or a recovery code."""
    if current_user.is_authenticated:
        return redirect(url_for("main.dashboard"))
    held = pending_sign_in("code")
    if held is None:
        return redirect(url_for("auth.login"))
    user, next_url = held
    error, status, headers = None, 200, {}
    if request.method == "POST":
        method, refusal = sign_in_attempt(
            user.email, lambda db: twofactor.verify(db, user, request.form.get("code", ""), now=utcnow()))
        if refusal is None:
            finish_sign_in(user, two_factor=True)
            if method == "recovery":
                left = twofactor.recovery_codes_left(get_session(), user)
                flash(_("You signed in with a recovery code; %(left)d are left. "
                          "If your phone is lost, ask an administrator to reset your two-factor sign-in.", left=left))
            return redirect(next_url)
        error, status, headers = refusal
    return render_template("twofactor/code.html", error=error), status, headers


def _enrolling_user():
    """The signed-in user, or the one half-way through a sign-in that needs enrolment; None otherwise."""
    if current_user.is_authenticated:
        return current_user._get_current_object(), url_for("main.dashboard")
    return pending_sign_in("enrol")


def _secret_enrolling(user) -> str | None:
    """The secret this user is enrolling, from the cookie; None if none is, or it is another user's."""
    enrolling = session.get(ENROLLING)
    if isinstance(enrolling, dict) and enrolling.get("user_id") == user.id:
        return enrolling["secret"]
    return None


@bp.get("/account/two-factor/qr.svg")
def qr():
    """The QR code of the secret being enrolled, as an image file (the CSP allows no data: URLs)."""
    held = _enrolling_user()
    if held is None:
        return redirect(url_for("auth.login"))
    secret = _secret_enrolling(held[0])
    if secret is None:
        raise NotFound("enrolment")
    svg = twofactor.qr_code(twofactor.provisioning_uri(held[0], secret))
    return svg, 200, {"Content-Type": "image/svg+xml"}


@bp.route("/account/two-factor", methods=["GET", "POST"])
def setup():
    """Enrolment (a QR code, the secret as text, and a first code to confirm), or its status once done."""
    signing_in = not current_user.is_authenticated
    held = _enrolling_user()
    if held is None:
        return redirect(url_for("auth.login"))
    user, next_url = held
    db = get_session()
    credential = twofactor.credential_for(db, user)
    if credential is not None:
        return render_template("twofactor/status.html", credential=credential,
                               codes_left=twofactor.recovery_codes_left(db, user))
    secret = _secret_enrolling(user)
    if secret is None:
        secret = twofactor.new_secret()
        session[ENROLLING] = {"user_id": user.id, "secret": secret}
    errors = {}
    if request.method == "POST":
        try:
            codes = twofactor.enrol(db, user, secret, request.form.get("code", ""), now=utcnow())
        except ValidationError as error:
            errors = error.errors
        else:
            if signing_in:
                finish_sign_in(user, two_factor=True)
            else:
                db.commit()
                begin_session(user, two_factor=True)  # a new session id, now a two-factor one
            return render_template("twofactor/recovery_codes.html", codes=codes, next_url=next_url)
    return render_template("twofactor/setup.html", secret=secret, errors=errors,
                           signing_in=signing_in, required=twofactor.required_for(user)), 400 if errors else 200
