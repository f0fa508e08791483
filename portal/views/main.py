from __future__ import annotations

from flask import Blueprint, abort, render_template
from flask_login import current_user

from portal import auth, i18n
from portal.db import get_session
from portal.models import Note, NoteArticle
from portal.services import content, dashboard
from portal.views import require_sign_in

bp = Blueprint("main", __name__)
bp.before_request(require_sign_in)


@bp.get("/", endpoint="dashboard")
def dashboard_page():
    board = dashboard.for_user(get_session(), current_user, i18n.today())
    return render_template("main/dashboard.html", board=board)


@bp.get("/regulations")
def regulations():
    return render_template("main/regulations.html", acts=content.acts(get_session()))


@bp.get("/regulations/<slug>")
def act(slug: str):
    db = get_session()
    found = content.act_by_slug(db, slug)
    if found is None:
        abort(404)
    citing = db.execute(
        auth.visible_notes(current_user)
        .with_only_columns(NoteArticle.article_id, Note.id, Note.title)
        .join(NoteArticle, NoteArticle.note_id == Note.id)
        .where(NoteArticle.article_id.in_([article.id for article in found.articles]))
        .order_by(Note.last_activity_at.desc())
    ).all()
    by_article: dict[int, list] = {}
    for article_id, note_id, title in citing:
        by_article.setdefault(article_id, []).append((note_id, title))
    return render_template("main/act.html", act=found, citing=by_article)
