from __future__ import annotations

import time
from urllib.parse import urlsplit

from flask import Blueprint, current_app, flash, redirect, render_template, request, session, url_for
from flask_babel import force_locale
from flask_babel import gettext as _
from flask_login import current_user, login_required, login_user, logout_user

from portal import i18n
from portal.db import get_session
from portal.errors import RateLimited, SignInRefused, ValidationError
from portal.models import User
from portal.services import accounts, sessions, twofactor
from portal.views import rate_limit

bp = Blueprint("auth", __name__)

# Between the password and the second factor, the cookie holds only this: no user is signed in, so
# every page but the code or enrolment page still sends the browser to /login.
PENDING = "pending_sign_in"


def _safe_next(target: str | None) -> str:
    """Only same-site paths: a crafted ?next= must not send an official elsewhere."""
    if target and target.startswith("/") and not target.startswith("//") and not urlsplit(target).netloc:
        return target
    return url_for("main.dashboard")


def begin_session(user: User, *, two_factor: bool) -> None:
    """A new server-side session and a cleared cookie (no session fixation), then Flask-Login's sign-in."""
    db = get_session()
    session.clear()
    sessions.start(db, user, address=request.remote_addr or "", browser=request.user_agent.string,
                   two_factor=two_factor)
    db.commit()
    login_user(user)


def finish_sign_in(user: User, *, two_factor: bool) -> None:
    accounts.complete_sign_in(get_session(), user, two_factor=two_factor)
    begin_session(user, two_factor=two_factor)


def hold_sign_in(user: User, stage: str, next_url: str) -> None:
    """Password accepted; the second factor (stage "code") or its enrolment (stage "enrol") is next."""
    session.clear()
    session[PENDING] = {"user_id": user.id, "stage": stage, "at": int(time.time()), "next": next_url}


def pending_sign_in(stage: str) -> tuple[User, str] | None:
    """The user half-way through signing in at this stage, and where they were going; None if none."""
    held = session.get(PENDING)
    if not isinstance(held, dict) or held.get("stage") != stage:
        return None
    if time.time() - held.get("at", 0) > current_app.config["SIGN_IN_CODE_MINUTES"] * 60:
        session.pop(PENDING)
        return None
    user = get_session().get(User, held.get("user_id"))
    if user is None or not user.is_active:
        return None
    return user, _safe_next(held.get("next"))


def _after_password(user: User, next_url: str):
    db = get_session()
    if twofactor.credential_for(db, user) is not None:
        hold_sign_in(user, "code", next_url)
        return redirect(url_for("twofactor.code"))
    if twofactor.required_for(user):
        hold_sign_in(user, "enrol", next_url)
        flash(_("Your account needs two-factor sign-in. Set it up to continue."))
        return redirect(url_for("twofactor.setup"))
    finish_sign_in(user, two_factor=False)
    return redirect(next_url)


@bp.route("/login", methods=["GET", "POST"])
def login():
    if current_user.is_authenticated:
        return redirect(_safe_next(request.args.get("next")))
    error, status, headers = None, 200, {}
    if request.method == "POST":
        email = request.form.get("email", "")
        user, refusal = sign_in_attempt(
            accounts.normalise_email(email),
            lambda db: accounts.authenticate(db, email, request.form.get("password", "")))
        if refusal is None:
            get_session().commit()
            return _after_password(user, _safe_next(request.args.get("next")))
        error, status, headers = refusal
    return render_template("auth/login.html", error=error, email=request.form.get("email", "")), status, headers


def sign_in_attempt(user_key: str, check):
    """One sign-in step (password or code) under the rate limit: (check's result, None), or (None, (message,
    status, headers)). A refusal is committed, since it counts toward the account's lock-out."""
    db = get_session()
    try:
        rate_limit("sign_in", user_key)
        return check(db), None
    except RateLimited as limited:
        return None, (str(limited), 429, limited.headers)
    except SignInRefused as refused:
        db.commit()
        return None, (str(refused), 401, {})


@bp.post("/logout")
@login_required
def logout():
    db = get_session()
    sessions.end(db, current_user, current_user.session_key)
    db.commit()
    logout_user()
    session.clear()
    flash(_("You have signed out."))
    return redirect(url_for("auth.login"))


@bp.route("/invitations/<token>", methods=["GET", "POST"])
def invitation(token: str):
    db = get_session()
    try:
        pending = accounts.invitation_for(db, token)
    except ValidationError as error:
        return render_template("auth/invitation.html", invalid=str(error)), 400
    errors = {}
    if request.method == "POST":
        try:
            user = accounts.accept_invitation(
                db, token, request.form.get("password", ""), request.form.get("confirm", ""),
                lang=session.get("lang"),
            )
        except ValidationError as error:
            errors = error.errors
        else:
            db.commit()
            logout_user()
            response = _after_password(user, url_for("main.dashboard"))
            with force_locale(user.lang):
                flash(_("Welcome. Your password is set."))
            return response
    # In the invitee's language, as the e-mail was, unless they switched it on this page.
    with force_locale(session.get("lang") or pending.user.lang):
        return render_template("auth/invitation.html", invitation=pending, errors=errors), 400 if errors else 200


@bp.route("/account/password", methods=["GET", "POST"])
@login_required
def change_password():
    errors = {}
    if request.method == "POST":
        db = get_session()
        user = current_user._get_current_object()
        try:
            accounts.change_password(
                db, user, current=request.form.get("current", ""),
                new=request.form.get("password", ""), confirm=request.form.get("confirm", ""),
            )
        except ValidationError as error:
            errors = error.errors
        else:
            db.commit()
            # Every session was ended; this browser continues in a new one.
            begin_session(user, two_factor=twofactor.credential_for(db, user) is not None)
            flash(_("Your password is changed. You were signed out everywhere else."))
            return redirect(url_for("main.dashboard"))
    return render_template("auth/password.html", errors=errors), 400 if errors else 200


@bp.route("/account", methods=["GET", "POST"])
@login_required
def profile():
    errors = {}
    values = {"lang": current_user.lang, "time_zone": current_user.time_zone}
    if request.method == "POST":
        values = {"lang": request.form.get("lang", ""), "time_zone": request.form.get("time_zone", "")}
        db = get_session()
        try:
            accounts.set_preferences(db, current_user, **values)
        except ValidationError as error:
            db.rollback()
            errors = error.errors
        else:
            db.commit()
            flash(_("Your settings are saved."))
            return redirect(url_for("auth.profile"))
    return render_template("auth/profile.html", errors=errors, values=values,
                           common_zones=i18n.COMMON_TIME_ZONES, zones=sorted(i18n.time_zones()),
                           side_zone=i18n.SIDE_TIME_ZONES[current_user.side]), 400 if errors else 200


@bp.post("/language")
def switch_language():
    """The switch on every page: saved on the account, or in the session before sign-in."""
    lang = request.form.get("lang", "")
    if lang in i18n.LANGUAGES:
        if current_user.is_authenticated:
            db = get_session()
            accounts.set_preferences(db, current_user, lang=lang, time_zone=current_user.time_zone)
            db.commit()
        else:
            session["lang"] = lang
    return redirect(_safe_next(request.form.get("next")))
