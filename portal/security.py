"""Response headers that every page carries."""
from __future__ import annotations

import logging
import re

from flask import Flask, Response, request

from portal.errors import ValidationError

# Invitation links carry a bearer token in their path; access logs must not keep it.
SECRET_PATHS = re.compile(r"(/invitations/)[^\s?\"]+")


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
        # No field has a use for NUL, and PostgreSQL cannot store it in text: refuse it with a
        # message before it reaches a query, on every database alike.
        for source in (request.args, request.form):
            if any("\x00" in key or "\x00" in value for key, value in source.items(multi=True)):
                raise ValidationError("The request contained a NUL character (\\0), which no field accepts.")

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
