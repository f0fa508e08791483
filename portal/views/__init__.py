"""Blueprints, one per feature, and what every template may use."""
from __future__ import annotations

from datetime import date

from flask import Flask, g, redirect, request, url_for
from flask_login import current_user
from werkzeug.routing import BaseConverter

from portal.models.notes import CASE_STATUSES, KINDS, MARKINGS


class IdConverter(BaseConverter):
    """Database ids: digits that fit a 64-bit integer, so an absurd id is a 404 rather than an overflow."""

    regex = r"[1-9][0-9]{0,17}"

    def to_python(self, value: str) -> int:
        return int(value)

    def to_url(self, value) -> str:
        return str(int(value))


def register(app: Flask) -> None:
    from portal.views import admin, auth, channels, main, notes, search
    from portal.views import acknowledgements, notifications, translations

    app.url_map.converters["id"] = IdConverter
    for module in (auth, main, channels, notes, search, admin):
        app.register_blueprint(module.bp)
    for module in (translations, acknowledgements, notifications):
        app.register_blueprint(module.bp)

    @app.context_processor
    def globals_for_templates():
        return {
            "today": g.get("today") or date.today(),
            "ui_lang": current_user.lang if current_user and current_user.is_authenticated else "en",
            "KINDS": KINDS,
            "MARKINGS": MARKINGS,
            "CASE_STATUSES": CASE_STATUSES,
            "unread_notifications": _unread_notifications,
        }


def _unread_notifications() -> int:
    """The header's unread count: called by the template, so pages that do not show it pay nothing."""
    from portal.db import get_session
    from portal.services import notifications

    if not current_user.is_authenticated:
        return 0
    return notifications.unread_count(get_session(), current_user)


def require_sign_in():
    """before_request for blueprints that are for signed-in officials only."""
    if not current_user.is_authenticated:
        return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
    return None
