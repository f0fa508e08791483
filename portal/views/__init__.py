"""Blueprints, one per feature, and what every template may use."""
from __future__ import annotations

from flask import Flask, has_request_context, redirect, render_template, request, url_for
from flask_login import current_user
from flask_wtf.csrf import generate_csrf
from werkzeug.routing import BaseConverter, ValidationError

from portal import i18n
from portal.db import MAX_ID, get_session, utcnow
from portal.models.notes import CASE_STATUSES, KINDS, MARKINGS
from portal.services import ratelimits


class IdConverter(BaseConverter):
    """Database ids: digits within the id columns' range (db.MAX_ID), so an absurd id is a 404
    rather than an overflow in the database."""

    regex = r"[1-9][0-9]{0,9}"

    def to_python(self, value: str) -> int:
        if int(value) > MAX_ID:
            raise ValidationError()  # werkzeug's: the rule does not match, so 404
        return int(value)

    def to_url(self, value) -> str:
        return str(int(value))


def register(app: Flask) -> None:
    from portal import api
    from portal.views import (acknowledgements, admin, audit, auth, channels, digests, export, main, notes,
                              notifications, search, sessions, subscriptions, tokens, translations, twofactor)

    app.url_map.converters["id"] = IdConverter
    app.jinja_env.globals["url_for"] = _remembering_url_for(app)
    for module in (auth, main, channels, notes, search, admin, tokens, subscriptions, digests, twofactor, sessions,
                   audit, export, translations, acknowledgements, notifications):
        app.register_blueprint(module.bp)
    api.register(app)

    @app.context_processor
    def globals_for_templates():
        return {
            "today": i18n.today(),
            "ui_lang": i18n.ui_lang(),
            "KINDS": KINDS,
            "MARKINGS": MARKINGS,
            "CASE_STATUSES": CASE_STATUSES,
            "unread_notifications": _unread_notifications,
            "csrf_token": _csrf_token_once(),
            **i18n.template_gettext(),
        }


def _csrf_token_once():
    """csrf_token() for one render: Flask-WTF's looks its settings and the request's token up again for
    each form (a thread page has five). Still made on first use only, as a page without a form makes none."""
    token = None

    def csrf_token() -> str:
        nonlocal token
        if token is None:
            token = generate_csrf()
        return token

    return csrf_token


def remembered_per_mount(cache: dict, key, build):
    """What build() gives for `key` under this request's script root (the mount point the server
    gives), built once and kept in `cache`: links that do not change from page to page."""
    full_key = (request.script_root, key)
    value = cache.get(full_key)
    if value is None:
        value = build()
        if len(cache) < 1000:  # the script root comes from the server; never let it grow the cache
            cache[full_key] = value
    return value


def _remembering_url_for(app: Flask):
    """url_for for templates that builds a link without arguments (the header's links, a stylesheet)
    once per script root rather than on every page: about 15 a page, each a walk of the URL map."""
    built: dict = {}

    def template_url_for(endpoint: str, **values) -> str:
        if (values and (endpoint != "static" or values.keys() != {"filename"})) or not has_request_context():
            return app.url_for(endpoint, **values)
        return remembered_per_mount(built, (endpoint, values.get("filename")),
                                    lambda: app.url_for(endpoint, **values))

    return template_url_for


def _unread_notifications() -> int:
    """The header's unread count: called by the template, so pages that do not show it pay nothing."""
    from portal.services import notifications

    if not current_user.is_authenticated:
        return 0
    return notifications.unread_count(get_session(), current_user)


def require_sign_in():
    """before_request for blueprints that are for signed-in officials only."""
    if not current_user.is_authenticated:
        return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
    return None


def atom(title: str, alternate: str, entries: list, updated):
    """An Atom response from the one feed template, for session and feed-token feeds alike."""
    body = render_template("_feed.xml", title=title, alternate=alternate, entries=entries, updated=updated)
    return body, 200, {"Content-Type": "application/atom+xml; charset=utf-8"}


def rate_limit(action: str, user_key: str | None, *, commit: bool = True) -> None:
    """Count this request against the action's limits (RateLimited when over them); call it before the
    action changes anything. Committed at once, so the count stands whatever the outcome, unless
    commit=False: then it is saved with the action, and an action refused as invalid does not count.
    The JSON API calls it too, so that a user has one allowance whether they use the web or a token."""
    db = get_session()
    ratelimits.hit(db, action, user_key=user_key, address=request.remote_addr, now=utcnow())
    if commit:
        db.commit()
