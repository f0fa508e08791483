from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from portal import auth, mail
from portal.db import MAX_ID, get_session
from portal.errors import NotFound, ValidationError
from portal.models import Organisation, User
from portal.models.accounts import ROLES
from portal.models.channels import VISIBILITIES
from portal.services import accounts, channels, notes, twofactor
from portal.views import require_sign_in

bp = Blueprint("admin", __name__, url_prefix="/admin")


@bp.before_request
def admins_only():
    if (redirect_to := require_sign_in()) is not None:
        return redirect_to
    auth.require_admin(current_user)
    return None


def _user(user_id: int) -> User:
    user = get_session().get(User, user_id)
    if user is None:
        raise NotFound("user")
    return user


@bp.route("/users", methods=["GET", "POST"])
def users():
    db = get_session()
    errors, values, link = {}, {"role": "member"}, None
    if request.method == "POST":
        values = request.form.to_dict()
        organisation_id = request.form.get("organisation_id", type=int) or 0
        organisation = db.get(Organisation, organisation_id) if 0 < organisation_id <= MAX_ID else None
        try:
            user = accounts.create_user(
                db, email=values.get("email", ""), name=values.get("name", ""),
                organisation=organisation, role=values.get("role", "member"), lang=values.get("lang") or None,
                actor=current_user,
            )
            link = accounts.invite(db, user, actor=current_user)
            mail.send_invitation(user, link, inviter=current_user)
        except ValidationError as error:
            db.rollback()
            errors = error.errors
        else:
            db.commit()
            flash(_("Invitation sent to %(email)s.", email=user.email))
            values = {"role": "member"}
    return render_template(
        "admin/users.html", users=accounts.list_users(db), organisations=accounts.list_organisations(db),
        invitations=accounts.pending_invitations(db), roles=ROLES, values=values, errors=errors, link=link,
        enrolled=twofactor.enrolled_user_ids(db),
    ), 400 if errors else 200


@bp.post("/users/<id:user_id>")
def update_user(user_id: int):
    db = get_session()
    user = _user(user_id)
    try:
        if "role" in request.form:
            accounts.set_role(db, user, request.form["role"], actor=current_user)
        if "is_active" in request.form:
            accounts.set_active(db, user, request.form["is_active"] == "1", actor=current_user)
    except ValidationError as error:
        flash(str(error), "error")
    else:
        db.commit()
        flash(_("%(email)s was updated.", email=user.email))
    return redirect(url_for("admin.users"))


@bp.post("/users/<id:user_id>/invite")
def reinvite(user_id: int):
    db = get_session()
    user = _user(user_id)
    try:
        link = accounts.invite(db, user, actor=current_user)
        mail.send_invitation(user, link, inviter=current_user)
    except ValidationError as error:
        flash(str(error), "error")
        return redirect(url_for("admin.users"))
    db.commit()
    flash(_("A new invitation was sent to %(email)s; earlier links no longer work.", email=user.email))
    return redirect(url_for("admin.users"))


@bp.post("/users/<id:user_id>/two-factor/reset")
def reset_two_factor(user_id: int):
    db = get_session()
    user = _user(user_id)
    try:
        twofactor.reset(db, user, actor=current_user)
    except ValidationError as error:
        flash(str(error), "error")
    else:
        db.commit()
        flash(_("Two-factor sign-in was reset for %(email)s; they set it up again at their next sign-in.", email=user.email))
    return redirect(url_for("admin.users"))


@bp.route("/organisations", methods=["GET", "POST"])
def organisations():
    db = get_session()
    errors, values = {}, {}
    if request.method == "POST":
        values = request.form.to_dict()
        try:
            accounts.create_organisation(
                db, slug=values.get("slug", ""), name=values.get("name", ""), side=values.get("side", ""),
                actor=current_user,
            )
        except ValidationError as error:
            errors = error.errors
        else:
            db.commit()
            flash(_("The organisation was created."))
            values = {}
    return render_template(
        "admin/organisations.html", organisations=accounts.list_organisations(db), values=values, errors=errors,
    ), 400 if errors else 200


@bp.route("/channels", methods=["GET", "POST"])
def channel_list():
    db = get_session()
    errors, values = {}, {"visibility": "joint"}
    if request.method == "POST":
        values = request.form.to_dict()
        try:
            channel = channels.create_channel(db, values, actor=current_user)
        except ValidationError as error:
            errors = error.errors
        else:
            db.commit()
            flash(_("The channel was created."))
            return redirect(url_for("admin.channel", slug=channel.slug))
    return render_template(
        "admin/channels.html", channels=channels.list_all(db), values=values, errors=errors,
        visibilities=VISIBILITIES,
    ), 400 if errors else 200


@bp.route("/channels/<slug>", methods=["GET", "POST"])
def channel(slug: str):
    db = get_session()
    found = channels.channel_by_slug(db, slug)
    errors = {}
    values = {key: getattr(found, key) for key in
              ("name_en", "name_ja", "description_en", "description_ja", "visibility")}
    if request.method == "POST":
        values = request.form.to_dict()
        try:
            channels.update_channel(db, found, values, actor=current_user)
        except ValidationError as error:
            errors = error.errors
        else:
            db.commit()
            flash(_("The channel was saved."))
            return redirect(url_for("admin.channel", slug=slug))
    return render_template(
        "admin/channel.html", channel=found, members=channels.members(db, found), values=values,
        errors=errors, visibilities=VISIBILITIES, users=accounts.list_users(db),
    ), 400 if errors else 200


@bp.post("/channels/<slug>/members")
def add_member(slug: str):
    db = get_session()
    found = channels.channel_by_slug(db, slug)
    try:
        user = accounts.user_by_email(db, request.form.get("email", ""))
        channels.add_member(db, found, user, is_moderator=request.form.get("is_moderator") == "1",
                            actor=current_user)
    except (ValidationError, NotFound) as error:
        flash(str(error), "error")
    else:
        db.commit()
        flash(_("%(email)s was added.", email=user.email))
    return redirect(url_for("admin.channel", slug=slug))


@bp.post("/channels/<slug>/members/<id:user_id>/remove")
def remove_member(slug: str, user_id: int):
    db = get_session()
    channels.remove_member(db, channels.channel_by_slug(db, slug), _user(user_id), actor=current_user)
    db.commit()
    flash(_("The member was removed."))
    return redirect(url_for("admin.channel", slug=slug))


@bp.post("/channels/<slug>/archive")
def archive(slug: str):
    db = get_session()
    found = channels.channel_by_slug(db, slug)
    channels.set_archived(db, found, request.form.get("archive") == "1", actor=current_user)
    db.commit()
    flash(_("The channel is archived.") if found.is_archived else _("The channel is open again."))
    return redirect(url_for("admin.channel", slug=slug))


@bp.get("/deleted")
def deleted():
    return render_template("admin/deleted.html", notes=notes.deleted_notes(get_session(), current_user))
