from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy.orm import defer, joinedload

from portal import auth
from portal.db import get_session
from portal.errors import NotFound, RateLimited, ValidationError
from portal.markup import render_markdown
from portal.models import Note, Reply
from portal.services import acknowledgements, content, notes, replies
from portal.views import rate_limit, remembered_per_mount, require_sign_in
from portal.views.channels import note_form

bp = Blueprint("notes", __name__)
bp.before_request(require_sign_in)


def _note(note_id: int, **kwargs):
    return auth.note_for(get_session(), current_user, note_id, **kwargs)


_PLACEHOLDER_ID = 987654321987654321
_LINKS: dict = {}  # the patterns, with "{note}" for the note's id


def reply_links(note) -> dict[str, str]:
    """URLs for a thread's replies as str.format patterns: built with url_for once per script root, not
    on every page, and never per reply."""
    patterns = remembered_per_mount(_LINKS, "replies", _reply_link_patterns)
    note_id = str(note.id)
    return {name: pattern.replace("{note}", note_id) for name, pattern in patterns.items()}


def _reply_link_patterns() -> dict[str, str]:
    def pattern(endpoint: str, **values) -> str:
        return url_for(endpoint, **values).replace(str(_PLACEHOLDER_ID), "{}").replace(
            str(_PLACEHOLDER_ID + 1), "{note}")

    note_id = _PLACEHOLDER_ID + 1
    return {
        "note": pattern("notes.show", note_id=note_id),
        "accept": pattern("notes.accept", note_id=note_id),
        "subthread": pattern("notes.subthread", note_id=note_id, reply_id=_PLACEHOLDER_ID),
        "edit": pattern("notes.edit_reply", reply_id=_PLACEHOLDER_ID),
        "delete": pattern("notes.delete_reply", reply_id=_PLACEHOLDER_ID),
        "history": pattern("notes.reply_history", reply_id=_PLACEHOLDER_ID),
        "restore": pattern("notes.restore_reply", reply_id=_PLACEHOLDER_ID),
    }


# What the note page shows of the note, joined to it rather than one lazy load each, and what it does
# not show (the Markdown). Topics are not joined (SQLite would scan their whole association table):
# content.note_topics_of reads them.
PAGE_LOAD = (joinedload(Note.translation), joinedload(Note.citations), joinedload(Note.milestones),
             defer(Note.body))


def _note_page(note, *, reply_errors=None, reply_values=None, reply_parent=None, status=200):
    db = get_session()
    thread = replies.thread(db, note)
    accepted = replies.shown_reply(db, note.accepted_reply_id, thread) if note.accepted_reply_id else None
    may_moderate = auth.moderates(db, current_user, note.channel)
    acknowledgement = acknowledgements.status(db, note)
    return render_template(
        "notes/show.html",
        note=note,
        topics=content.note_topics_of(db, note.id),
        thread=thread,
        links=reply_links(note),
        accepted=accepted,
        may_moderate=may_moderate,
        may_translate=auth.may_translate(db, current_user, note, moderator=may_moderate),
        acknowledgement=acknowledgement,
        may_acknowledge=acknowledgement is not None and auth.may_acknowledge(
            current_user, note, acknowledgement.request.side),
        reply_errors=reply_errors or {},
        reply_values=reply_values or {},
        reply_parent=reply_parent,
    ), status


@bp.get("/notes/<id:note_id>")
def show(note_id: int):
    return _note_page(_note(note_id, include_deleted=True, load=PAGE_LOAD))


@bp.get("/notes/<id:note_id>/replies/<id:reply_id>")
def subthread(note_id: int, reply_id: int):
    """"Continue this thread": the branch under one reply, on its own page."""
    db = get_session()
    note = _note(note_id)
    root = db.get(Reply, reply_id)
    if root is None or root.note_id != note.id:
        raise NotFound("reply")
    return render_template(
        "notes/subthread.html", note=note, root=root, thread=replies.thread(db, note, root=root),
        links=reply_links(note),
        may_moderate=auth.moderates(db, current_user, note.channel),
    )


@bp.route("/notes/<id:note_id>/edit", methods=["GET", "POST"])
def edit(note_id: int):
    db = get_session()
    note = _note(note_id)
    auth.require_author_or_moderator(db, current_user, note.author_id, note.channel)
    return note_form(db, lambda values: notes.edit_note(db, note, current_user, values),
                     values=notes.form_values(note), channel=note.channel, kind=note.kind, note=note)


@bp.post("/preview")
def preview():
    """The live preview of the compose page's script: Markdown rendered exactly as on save."""
    return {"html": render_markdown(request.form.get("body", ""))}


@bp.get("/notes/<id:note_id>/history")
def history(note_id: int):
    note = _note(note_id)
    return render_template("notes/history.html", note=note, revisions=notes.revision_diffs(note))


def act_on_note(note_id: int, action, message: str, *, anchor: str | None = None, **kwargs):
    """Run one service action on a note from a POST, then go back to the note (at `anchor`). A refusal
    is flashed as its messages alone: the note page shows no form field they could be named after."""
    db = get_session()
    note = _note(note_id, **kwargs)
    try:
        action(db, note)
    except ValidationError as error:
        flash(" ".join(str(text) for text in error.errors.values()), "error")
    else:
        db.commit()
        flash(message)
    return redirect(url_for("notes.show", note_id=note.id, _anchor=anchor))


@bp.post("/notes/<id:note_id>/delete")
def delete(note_id: int):
    return act_on_note(note_id, lambda db, note: notes.delete_note(db, note, current_user), _("The note was deleted."))


@bp.post("/notes/<id:note_id>/restore")
def restore(note_id: int):
    return act_on_note(note_id, lambda db, note: notes.restore_note(db, note, current_user),
                       _("The note was restored."), include_deleted=True)


@bp.post("/notes/<id:note_id>/status")
def status(note_id: int):
    return act_on_note(note_id, lambda db, note: notes.set_case_status(
        db, note, current_user, request.form.get("case_status", "")), _("The case status was changed."))


@bp.post("/notes/<id:note_id>/accept")
def accept(note_id: int):
    def accept_reply(db, note):
        reply = replies.reply_in_note(db, note, request.form.get("reply_id", type=int))
        if reply is None:
            raise ValidationError(_("Choose the reply that answers the question."))
        notes.accept_answer(db, note, reply, current_user)

    return act_on_note(note_id, accept_reply, _("The answer was accepted."))


@bp.post("/notes/<id:note_id>/decline")
def decline(note_id: int):
    return act_on_note(note_id, lambda db, note: notes.decline_question(
        db, note, current_user, request.form.get("grounds", "")), _("The question was declined."))


@bp.post("/notes/<id:note_id>/reopen")
def reopen(note_id: int):
    return act_on_note(note_id, lambda db, note: notes.reopen_question(db, note, current_user),
                       _("The question is open again."))


@bp.post("/notes/<id:note_id>/replies")
def reply(note_id: int):
    db = get_session()
    note = _note(note_id)
    values = {"body": request.form.get("body", ""), "parent_id": request.form.get("parent_id", "")}
    try:
        rate_limit("post", str(current_user.id), commit=False)
    except RateLimited as limited:
        page, status = _note_page(note, reply_errors={"_": str(limited)}, reply_values=values, status=429)
        return page, status, limited.headers
    parent = None
    try:
        parent = replies.reply_in_note(db, note, request.form.get("parent_id", type=int))
        posted = replies.post_reply(db, note, current_user, values["body"], parent=parent)
    except ValidationError as error:
        # A reply to a reply keeps its place: shown again, the form still answers that reply.
        return _note_page(note, reply_errors=error.errors, reply_values=values, reply_parent=parent, status=400)
    db.commit()
    return redirect(url_for("notes.show", note_id=note.id, _anchor=f"reply-{posted.id}"))


@bp.get("/replies/<id:reply_id>")
def reply_permalink(reply_id: int):
    reply = auth.reply_for(get_session(), current_user, reply_id)
    return redirect(url_for("notes.show", note_id=reply.note_id, _anchor=f"reply-{reply.id}"))


@bp.route("/replies/<id:reply_id>/edit", methods=["GET", "POST"])
def edit_reply(reply_id: int):
    db = get_session()
    reply = auth.reply_for(db, current_user, reply_id)
    auth.require_author_or_moderator(db, current_user, reply.author_id, reply.note.channel)
    errors, body = {}, reply.body
    status, headers = 200, {}
    if request.method == "POST":
        body = request.form.get("body", "")
        try:
            rate_limit("post", str(current_user.id), commit=False)
            replies.edit_reply(db, reply, current_user, body)
        except RateLimited as limited:
            errors, status, headers = {"_": str(limited)}, 429, limited.headers
        except ValidationError as error:
            errors, status = error.errors, 400
        else:
            db.commit()
            return redirect(url_for("notes.show", note_id=reply.note_id, _anchor=f"reply-{reply.id}"))
    return render_template("notes/reply_form.html", reply=reply, body=body, errors=errors), status, headers


@bp.get("/replies/<id:reply_id>/history")
def reply_history(reply_id: int):
    reply = auth.reply_for(get_session(), current_user, reply_id)
    revisions = []
    previous = ""
    for revision in reply.revisions:
        revisions.append((revision, notes.diff(previous, revision.body) if previous else []))
        previous = revision.body
    return render_template("notes/reply_history.html", reply=reply, revisions=list(reversed(revisions)))


@bp.post("/replies/<id:reply_id>/delete")
def delete_reply(reply_id: int):
    db = get_session()
    reply = auth.reply_for(db, current_user, reply_id)
    replies.delete_reply(db, reply, current_user)
    db.commit()
    flash(_("The reply was deleted."))
    return redirect(url_for("notes.show", note_id=reply.note_id, _anchor=f"reply-{reply.id}"))


@bp.post("/replies/<id:reply_id>/restore")
def restore_reply(reply_id: int):
    auth.require_admin(current_user)
    db = get_session()
    reply = db.get(Reply, reply_id)
    if reply is None:
        raise NotFound("reply")
    auth.note_for(db, current_user, reply.note_id)
    replies.restore_reply(db, reply, current_user)
    db.commit()
    flash(_("The reply was restored."))
    return redirect(url_for("notes.show", note_id=reply.note_id, _anchor=f"reply-{reply.id}"))
