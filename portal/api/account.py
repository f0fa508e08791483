from __future__ import annotations

from flask import Blueprint, g

from portal.api import http, represent

bp = Blueprint("account", __name__)


@bp.get("/me")
def me():
    return http.respond(represent.me(http.reader(), g.api_token))
