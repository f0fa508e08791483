"""Domain errors, raised by services, and the handlers that turn them into pages."""
from __future__ import annotations

from flask import Flask, render_template
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

    def __init__(self, errors: dict[str, str] | str):
        if isinstance(errors, str):
            errors = {"_": errors}
        self.errors = errors
        super().__init__("; ".join(f"{k}: {v}" if k != "_" else v for k, v in errors.items()))


class SignInRefused(DomainError):
    status = 401


class RateLimited(DomainError):
    """Too many attempts at something in a short time; retry_after is in seconds."""

    status = 429

    def __init__(self, message: str, *, retry_after: int):
        self.retry_after = retry_after
        super().__init__(message)


def register(app: Flask) -> None:
    @app.errorhandler(DomainError)
    def domain_error(error: DomainError):
        return _page(error.status, str(error) if error.status not in (404,) else None)

    @app.errorhandler(RateLimited)
    def rate_limited(error: RateLimited):
        body, status = _page(error.status, str(error))
        return body, status, {"Retry-After": str(error.retry_after)}

    @app.errorhandler(CSRFError)
    def csrf_error(error: CSRFError):
        return _page(400, "The form had expired or was not sent from this site. "
                          "Go back, reload the page and submit it again.")

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException):
        messages = {
            413: "That request is too large. Notes and replies are limited to 200 KB.",
        }
        return _page(error.code or 500, messages.get(error.code or 0))


def _page(status: int, message: str | None):
    return render_template("errors/error.html", status=status, message=message), status
