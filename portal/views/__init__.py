"""Blueprints, one per feature, and what every template may use."""
from __future__ import annotations

from datetime import date

from flask import Flask, g, redirect, request, url_for
from flask_login import current_user
from werkzeug.routing import BaseConverter, ValidationError

from portal.db import MAX_ID
from portal.models.notes import CASE_STATUSES, KINDS, MARKINGS


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
    from portal.views import admin, auth, channels, export, main, notes, search

    app.url_map.converters["id"] = IdConverter
    for module in (auth, main, channels, notes, search, admin, export):
        app.register_blueprint(module.bp)

    @app.context_processor
    def globals_for_templates():
        return {
            "today": g.get("today") or date.today(),
            "ui_lang": current_user.lang if current_user and current_user.is_authenticated else "en",
            "KINDS": KINDS,
            "MARKINGS": MARKINGS,
            "CASE_STATUSES": CASE_STATUSES,
        }


def require_sign_in():
    """before_request for blueprints that are for signed-in officials only."""
    if not current_user.is_authenticated:
        return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
    return None
