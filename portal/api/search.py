from __future__ import annotations

import hashlib

from flask import Blueprint, request

from portal.api import http, represent
from portal.db import get_session
from portal.services import search as search_service
from portal.views import rate_limit

bp = Blueprint("search", __name__)

SORTS = ("relevance", "newest")
# As on the web page: deeper pages than this are not worth ranking.
MAX_PAGE = 500


def search_page(query: str, *, sort: str, listing: str, only_notes: bool = False):
    """One page of a search as the token's owner, and the cursor of the next page (or None)."""
    limit = http.int_arg("limit", 30, 1, 100)
    page = http.read_cursor(listing) or 1
    if not isinstance(page, int) or not 1 <= page <= MAX_PAGE:
        raise http.bad_cursor()
    user = http.reader()
    rate_limit("search", str(user.id))
    result = search_service.search(get_session(), user, query, today=http.today(), sort=sort, page=page,
                                   per_page=limit, facets=False, lang=user.lang, only_notes=only_notes)
    more = result.page < result.pages and page < MAX_PAGE
    return result, (http.make_cursor(listing, page + 1) if more else None)


def listing_of(name: str, *parts: str) -> str:
    """Binds a cursor to its query, so a cursor from one search cannot page another."""
    return f"{name}:" + hashlib.sha256("\x00".join(parts).encode()).hexdigest()[:24]


@bp.get("/search")
def index():
    query = request.args.get("q", "").strip()
    if not query:
        raise http.Problem(400, "Give a query in q.", {"q": "Required."})
    sort = http.choice_arg("sort", SORTS, "relevance")
    result, cursor = search_page(query, sort=sort, listing=listing_of("search", query, sort))
    items = [{
        "kind": item.kind, "id": item.id, "note_id": item.note.id if item.note else None,
        "external_id": item.external_id, "title": item.title, "snippet": item.snippet,
        "channel": item.channel.slug if item.channel else None, "created_at": represent.moment(item.created),
        "url": represent.link(item.url), "score": item.score,
    } for item in result.items]
    return http.respond({"items": items, "total": result.total, "notices": result.notices, "next_cursor": cursor})
