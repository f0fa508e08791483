"""Domain errors, raised by services, and the handlers that turn them into pages."""
from __future__ import annotations

from collections.abc import Mapping

from flask import Flask, render_template
from flask_babel import lazy_gettext as _l
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException


class DomainError(Exception):
    status = 400


class NotFound(DomainError):
    """Missing, or not visible to this user: the two must look the same."""

    status = 404


class Forbidden(DomainError):
    """Visible, but this user may not do that (edit someone else's note, post in an archive)."""

    status = 403


class ValidationError(DomainError):
    status = 400

    def __init__(self, errors: Mapping[str, str] | str):
        # Messages may be lazy translations (not str): they are rendered in the reader's language.
        if not isinstance(errors, Mapping):
            errors = {"_": errors}
        self.errors = dict(errors)
        super().__init__("; ".join(str(v) if k == "_" else f"{k}: {v}" for k, v in self.errors.items()))


class SignInRefused(DomainError):
    status = 401


def register(app: Flask) -> None:
    @app.errorhandler(DomainError)
    def domain_error(error: DomainError):
        return _page(error.status, str(error) if error.status not in (404,) else None)

    @app.errorhandler(CSRFError)
    def csrf_error(error: CSRFError):
        return _page(400, _l("The form had expired or was not sent from this site. "
                                  "Go back, reload the page and submit it again."))

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException):
        messages = {
            413: _l("That request is too large. Notes and replies are limited to 200 KB."),
        }
        return _page(error.code or 500, messages.get(error.code or 0))


def _page(status: int, message: str | None):
    # The language switch returns to the dashboard, not to this URL: a "not found" page must be the
    # same bytes whatever was asked for, so that it tells nothing about what exists.
    return render_template("errors/error.html", status=status, message=message, lang_next="/"), status
