from __future__ import annotations

from flask import Blueprint

from portal import auth
from portal.api import http, represent
from portal.db import get_session
from portal.services import channels

bp = Blueprint("channels", __name__)


@bp.get("/channels")
def index():
    rows = channels.list_for(get_session(), http.reader())
    return http.respond({"items": [represent.channel(channel) for channel, _count in rows]})


@bp.get("/channels/<slug>")
def show(slug: str):
    return http.respond(represent.channel(auth.channel_for(get_session(), http.reader(), slug)))
