"""The API's HTTP conventions: bearer tokens, JSON in and out, ETags and preconditions, cursors."""
from __future__ import annotations

import json
from datetime import date
from functools import cache

from flask import Response, current_app, g, request
from itsdangerous import BadSignature, URLSafeSerializer
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012
from werkzeug.exceptions import UnsupportedMediaType
from werkzeug.http import generate_etag

from portal import i18n
from portal.api.openapi import DOCUMENT
from portal.db import get_session
from portal.errors import SignInRefused, problem
from portal.models import ApiToken, User
from portal.services import tokens

READ_METHODS = ("GET", "HEAD")


class Problem(Exception):
    """A refusal that is the API's own (bad JSON, a stale ETag), answered as problem details."""

    def __init__(self, status: int, detail: str, errors: dict[str, str] | None = None):
        super().__init__(detail)
        self.status, self.detail, self.errors = status, detail, errors


def handle_problem(error: Problem) -> Response:
    return problem(error.status, error.detail, errors=error.errors)


# Who is asking ------------------------------------------------------------------------------------

def authenticate() -> None:
    """before_request: a bearer token, never a session cookie, so a cross-site page cannot use one."""
    if request.endpoint == "api.openapi":
        return
    scheme, _, text = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not text.strip():
        raise SignInRefused("Send a personal API token: Authorization: Bearer <token>.")
    session = get_session()
    try:
        token = tokens.authenticate(session, text.strip())
    except SignInRefused:
        session.commit()  # the audit record of a refused token
        raise
    g.api_token = token
    if request.method not in READ_METHODS and token.scope != "write":
        raise Problem(403, "This token is read-only; create a token with the write scope to change things.")


def audit_use(response: Response) -> Response:
    """after_request: every request made with a token is audited, in one row; a failed request
    leaves nothing else behind (whatever its handler wrote is rolled back first)."""
    token: ApiToken | None = g.pop("api_token", None)
    if token is not None:
        session = get_session()
        if response.status_code >= 400:
            session.rollback()
        tokens.record_use(session, token, method=request.method, endpoint=request.endpoint,
                          status=response.status_code)
        session.commit()
    return response


def reader() -> User:
    return g.api_token.user


def today() -> date:
    """The token owner's date, not the server's: a question is overdue when it is on their calendar."""
    return i18n.today_for(reader())


# JSON in ----------------------------------------------------------------------------------------

@cache
def _validator(name: str) -> Draft202012Validator:
    registry = Registry().with_resource("urn:portal-api", Resource(contents=DOCUMENT, specification=DRAFT202012))
    return Draft202012Validator({"$ref": f"urn:portal-api#/components/schemas/{name}"}, registry=registry)


def _field_name(error) -> str:
    path = ".".join(str(part) for part in error.absolute_path)
    if error.validator == "required":
        missing = error.message.split("'")[1]
        return f"{path}.{missing}" if path else missing
    if error.validator == "additionalProperties":
        extra = sorted(set(error.instance) - set(error.schema.get("properties", {})))
        return ", ".join(f"{path}.{name}" if path else name for name in extra)
    return path or "body"


def json_body(schema: str) -> dict:
    """The request's JSON object, valid against a schema of the OpenAPI document, or a Problem naming
    every field that is wrong (unknown, missing, of the wrong type)."""
    if request.mimetype != "application/json":
        raise UnsupportedMediaType("Send the body as application/json.")
    raw = request.get_data(cache=True)  # 413 beyond MAX_CONTENT_LENGTH
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as error:
        raise Problem(400, f"The body is not valid JSON: {error}.") from None
    errors: dict[str, str] = {}
    for error in sorted(_validator(schema).iter_errors(data), key=lambda e: list(map(str, e.absolute_path))):
        name = _field_name(error)
        if error.validator == "additionalProperties":
            errors.setdefault(name, "Unknown field.")
        elif error.validator == "required":
            errors.setdefault(name, "This field is required.")
        else:
            errors.setdefault(name, _explain(error))
    if errors:
        raise Problem(422, "The body does not fit the schema.", errors)
    return data


def _explain(error) -> str:
    """What the schema wanted, without repeating the value sent (it may be long note text)."""
    wanted = error.validator_value
    if error.validator == "type":
        return f"Expected {' or '.join(wanted) if isinstance(wanted, list) else wanted}."
    if error.validator == "anyOf":
        return f"Expected {' or '.join(sub.get('type', 'another value') for sub in wanted)}."
    if error.validator == "enum":
        return f"One of: {', '.join(map(str, wanted))}."
    if error.validator == "maxLength":
        return f"At most {wanted} characters."
    if error.validator in ("minLength", "minimum", "maximum"):
        return f"{error.validator} is {wanted}."
    return "Not valid here."


# JSON out, ETags and preconditions ---------------------------------------------------------------

def encode(data) -> bytes:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()


def etag_of(data) -> str:
    return generate_etag(encode(data))


def respond(data, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """A JSON response with an ETag; a GET whose If-None-Match holds it gets 304."""
    response = Response(encode(data), status, mimetype="application/json", headers=headers)
    response.set_etag(etag_of(data))
    if request.method in READ_METHODS and status == 200:
        response.make_conditional(request)
    return response


def require_current(data) -> None:
    """A change must name the version it was based on (If-Match): 428 without it, 412 when stale."""
    if not request.headers.get("If-Match"):
        raise Problem(428, "Send If-Match with the ETag of what you read, so that nobody's change is lost.")
    if not request.if_match.contains(etag_of(data)):
        raise Problem(412, "It has changed since you read it: read it again, then send your change.")


# Cursors ----------------------------------------------------------------------------------------

def _signer() -> URLSafeSerializer:
    return URLSafeSerializer(current_app.config["SECRET_KEY"], salt="portal-api-cursor")


def make_cursor(listing: str, position) -> str:
    """An opaque, signed cursor for this listing (its name binds it to one list and query)."""
    return _signer().dumps([listing, position])


def read_cursor(listing: str):
    """The position in the cursor parameter, None without one; a tampered or foreign cursor is 400."""
    raw = request.args.get("cursor")
    if raw is None:
        return None
    try:
        name, position = _signer().loads(raw)
    except (BadSignature, ValueError, TypeError):
        raise bad_cursor() from None
    if name != listing:
        raise Problem(400, "The cursor belongs to another listing.", {"cursor": "Not a cursor for this list."})
    return position


def bad_cursor() -> Problem:
    return Problem(400, "The cursor is not one this API gave out.", {"cursor": "Not a valid cursor."})


def int_arg(name: str, default: int, low: int, high: int) -> int:
    raw = request.args.get(name)
    if raw is None:
        return default
    if not raw.isdigit() or not low <= int(raw) <= high:
        raise Problem(400, f"{name} is a whole number from {low} to {high}.", {name: f"From {low} to {high}."})
    return int(raw)


def choice_arg(name: str, choices, default: str | None = None) -> str | None:
    raw = request.args.get(name)
    if raw is None:
        return default
    if raw not in choices:
        raise Problem(400, f"{name} is one of {', '.join(choices)}.", {name: f"One of {', '.join(choices)}."})
    return raw
