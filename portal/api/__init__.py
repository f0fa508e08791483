"""The JSON API at /api/v1: the web's services and permission rules, behind personal tokens.

Each resource is a module with its own blueprint, nested under `bp`, and its paths in
portal/api/openapi.py. Token authentication, auditing and problem+json errors apply to all of
them here, once.
"""
from __future__ import annotations

from flask import Blueprint, Flask, Response

from portal.api import account, channels, http, notes, notifications, search, subscriptions
from portal.api.openapi import DOCUMENT

RESOURCES = (account, channels, notes, search, subscriptions, notifications)

bp = Blueprint("api", __name__, url_prefix="/api/v1")
bp.before_request(http.authenticate)
bp.after_request(http.audit_use)
bp.register_error_handler(http.Problem, http.handle_problem)
for _resource in RESOURCES:
    bp.register_blueprint(_resource.bp)


@bp.get("/openapi.json")
def openapi():
    return Response(http.encode(DOCUMENT), mimetype="application/json")


def register(app: Flask) -> None:
    """Mount the API. Requests carry a bearer token, never the session cookie, so CSRF does not apply."""
    from portal.extensions import csrf

    app.register_blueprint(bp)
    for blueprint in (bp, *(resource.bp for resource in RESOURCES)):
        csrf.exempt(blueprint)
