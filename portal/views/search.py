from __future__ import annotations

from flask import Blueprint, render_template, request
from flask_login import current_user

from portal import i18n
from portal.db import get_session
from portal.services import channels, content
from portal.services import search as search_service
from portal.errors import RateLimited
from portal.views import rate_limit, require_sign_in

bp = Blueprint("search", __name__)
bp.before_request(require_sign_in)

# The search page's controls; each adds name:value to the typed query.
CONTROLS = ("kind", "channel", "topic", "side", "lang", "is", "after", "before")


def _quoted(value: str) -> str:
    value = value.replace('"', "")
    return f'"{value}"' if " " in value else value


@bp.get("/search")
def index():
    db = get_session()
    typed = request.args.get("q", "")
    chosen = {name: request.args.get(name, "").strip() for name in CONTROLS}
    query = " ".join([typed, *(f"{name}:{_quoted(value)}" for name, value in chosen.items() if value)]).strip()
    sort = "newest" if request.args.get("sort") == "newest" else "relevance"
    page = max(1, request.args.get("page", 1, type=int) or 1)
    result, error, status, headers = None, None, 200, {}
    if query:
        try:
            rate_limit("search", str(current_user.id))
        except RateLimited as limited:
            error, status, headers = str(limited), 429, limited.headers
    if query and error is None:
        result = search_service.search(db, current_user, query, today=i18n.today(), sort=sort, page=min(page, 500),
                                       lang=current_user.lang)
    return render_template(
        "search/index.html", typed=typed, chosen=chosen, sort=sort, result=result,
        channels=[channel for channel, _ in channels.list_for(db, current_user)], topics=content.topics(db),
        error=error,
    ), status, headers


@bp.get("/search/help")
def help_page():
    return render_template("search/help.html")
