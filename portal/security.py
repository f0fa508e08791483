"""Response headers that every page carries."""
from __future__ import annotations

import hashlib
import logging
import re

from flask import Flask, Response, request
from flask_babel import lazy_gettext as _l

from portal.errors import NotFound, ValidationError

def token_hash(token: str) -> str:
    """How a random secret (session id, API or feed token, invitation nonce, recovery code) is stored.
    They are long and random, so a fast hash is enough: unlike a password there is nothing to guess."""
    return hashlib.sha256(token.encode()).hexdigest()


# Invitation, feed and unsubscribe links carry a bearer token in their path; access logs must not keep it.
SECRET_PATHS = re.compile(r"(/invitations/|/feeds/|/unsubscribe/)[^\s?\"/]+")


class RedactSecretPaths(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = SECRET_PATHS.sub(r"\1[redacted]", message)
        if redacted != message:
            record.msg, record.args = redacted, ()
        return True

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "font-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)


def init_app(app: Flask) -> None:
    access_log = logging.getLogger("werkzeug")
    if not any(isinstance(f, RedactSecretPaths) for f in access_log.filters):
        access_log.addFilter(RedactSecretPaths())

    @app.before_request
    def refuse_nul_characters() -> None:
        # No field has a use for NUL, and PostgreSQL cannot store or compare it in text (a 500
        # there): refuse it before it reaches a query, on every database alike. A path holding it
        # names nothing; a form holding it is refused with a message. Query strings are read by
        # parsers that drop control characters (search) or compare in Python (page, kind).
        if any("\x00" in str(value) for value in (request.view_args or {}).values()):
            raise NotFound("page")
        if any("\x00" in key or "\x00" in value for key, value in request.form.items(multi=True)):
            raise ValidationError(_l("The form contained a NUL character (\\0), which no field accepts."))

    @app.after_request
    def headers(response: Response) -> Response:
        response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
        if request.endpoint != "static":
            # Pages and feeds hold non-public text: no shared or back-button caches.
            response.headers.setdefault("Cache-Control", "no-store")
        return response
