from __future__ import annotations

from urllib.parse import urlsplit

from flask import Blueprint, flash, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required, login_user, logout_user

from portal import i18n
from portal.db import get_session
from portal.errors import SignInRefused, ValidationError
from portal.services import accounts

bp = Blueprint("auth", __name__)


def _safe_next(target: str | None) -> str:
    """Only same-site paths: a crafted ?next= must not send an official elsewhere."""
    if target and target.startswith("/") and not target.startswith("//") and not urlsplit(target).netloc:
        return target
    return url_for("main.dashboard")


@bp.route("/login", methods=["GET", "POST"])
def login():
    if current_user.is_authenticated:
        return redirect(_safe_next(request.args.get("next")))
    error = None
    if request.method == "POST":
        db = get_session()
        try:
            user = accounts.authenticate(db, request.form.get("email", ""), request.form.get("password", ""))
        except SignInRefused as refused:
            db.commit()
            error = str(refused)
        else:
            db.commit()
            session.clear()
            login_user(user)
            return redirect(_safe_next(request.args.get("next")))
    status = 401 if error else 200
    return render_template("auth/login.html", error=error, email=request.form.get("email", "")), status


@bp.post("/logout")
@login_required
def logout():
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
                db, token, request.form.get("password", ""), request.form.get("confirm", "")
            )
        except ValidationError as error:
            errors = error.errors
        else:
            db.commit()
            logout_user()
            session.clear()
            login_user(user)
            flash(_("Welcome. Your password is set."))
            return redirect(url_for("main.dashboard"))
    return render_template("auth/invitation.html", invitation=pending, errors=errors), 400 if errors else 200


@bp.route("/account/password", methods=["GET", "POST"])
@login_required
def change_password():
    errors = {}
    if request.method == "POST":
        db = get_session()
        try:
            accounts.change_password(
                db, current_user, current=request.form.get("current", ""),
                new=request.form.get("password", ""), confirm=request.form.get("confirm", ""),
            )
        except ValidationError as error:
            errors = error.errors
        else:
            db.commit()
            # This session continues under the new token; every other one is now invalid.
            login_user(current_user._get_current_object())
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
            flash(_(_("Your settings are saved.")))
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
