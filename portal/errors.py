"""Domain errors, raised by services, and the handlers that turn them into pages."""
from __future__ import annotations

import json
from collections.abc import Mapping

from flask import Flask, Response, render_template, request
from flask_babel import lazy_gettext as _l
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException
from werkzeug.http import HTTP_STATUS_CODES


class DomainError(Exception):
    status = 400

    @property
    def headers(self) -> dict[str, str]:
        """Headers the refusal's response carries, on a page and in the API alike."""
        return {}


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


class RateLimited(DomainError):
    """Too many attempts at something in a short time; retry_after is in seconds."""

    status = 429

    def __init__(self, message: str, *, retry_after: int):
        self.retry_after = retry_after
        super().__init__(message)

    @property
    def headers(self) -> dict[str, str]:
        """When to try again."""
        return {"Retry-After": str(self.retry_after)}


def register(app: Flask) -> None:
    @app.errorhandler(DomainError)
    def domain_error(error: DomainError):
        if is_api_request():
            return domain_problem(error)
        body, status = _page(error.status, str(error) if error.status not in (404,) else None)
        return body, status, error.headers

    @app.errorhandler(CSRFError)
    def csrf_error(error: CSRFError):
        return _page(400, _l("The form had expired or was not sent from this site. "
                                  "Go back, reload the page and submit it again."))

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException):
        if is_api_request():
            headers = {k: v for k, v in error.get_headers() if k.lower() in ("allow", "retry-after")}
            status = error.code or 500
            detail = NOT_FOUND_DETAIL if status == 404 else error.description if status < 500 else None
            return problem(status, detail, headers=headers)
        messages = {
            413: _l("That request is too large. Notes and replies are limited to 200 KB."),
        }
        return _page(error.code or 500, messages.get(error.code or 0))


def _page(status: int, message: str | None):
    # The language switch returns to the dashboard, not to this URL: a "not found" page must be the
    # same bytes whatever was asked for, so that it tells nothing about what exists.
    return render_template("errors/error.html", status=status, message=message, lang_next="/"), status


# The JSON API (/api/) answers every error as RFC 9457 problem details, never as an HTML page.

NOT_FOUND_DETAIL = "There is no such resource, or the token's owner may not see it."


def is_api_request() -> bool:
    return request.path.startswith("/api/")


def problem(status: int, detail: str | None = None, *, errors: dict[str, str] | None = None,
            headers: dict[str, str] | None = None) -> Response:
    """An application/problem+json response; `errors` names what is wrong with each field."""
    body = {"type": "about:blank", "title": HTTP_STATUS_CODES.get(status, "Error"), "status": status,
            "detail": detail or HTTP_STATUS_CODES.get(status, "Error")}
    if errors:
        body["errors"] = errors
    response = Response(json.dumps(body, ensure_ascii=False), status, mimetype="application/problem+json")
    response.headers.update(headers or {})
    return response


def domain_problem(error: DomainError) -> Response:
    """A service's refusal as problem details: 404 says nothing about what was looked for."""
    if isinstance(error, NotFound):
        return problem(404, NOT_FOUND_DETAIL)
    if isinstance(error, SignInRefused):
        return problem(401, str(error), headers={"WWW-Authenticate": 'Bearer realm="portal"'})
    if isinstance(error, ValidationError):
        # Messages may be lazy translations: JSON needs them as text.
        fields = {name: str(message) for name, message in error.errors.items() if name != "_"}
        general = "; ".join(str(message) for name, message in error.errors.items() if name == "_")
        return problem(422, general or "Some fields are not valid.", errors=fields)
    return problem(error.status, str(error), headers=error.headers)
