"""EU–Japan digital regulation exchange portal."""
from __future__ import annotations

import os

from flask import Flask
from flask_babel import gettext
from werkzeug.middleware.proxy_fix import ProxyFix


def create_app(config: dict | None = None) -> Flask:
    """Build the app: config, database, sign-in, security headers, blueprints and CLI."""
    instance_path = os.environ.get("PORTAL_INSTANCE_PATH") or (config or {}).get("INSTANCE_PATH")
    app = Flask(
        __name__,
        instance_path=os.path.abspath(instance_path) if instance_path else None,
        instance_relative_config=True,
        template_folder="../templates",
    )
    from portal import cli, config as settings, db, errors, i18n, search, security, views
    from portal.extensions import csrf, login_manager

    settings.load(app, config)
    if hops := int(app.config["PROXY_COUNT"]):
        # Behind reverse proxies, the client's address (rate limits, sessions), scheme and host are in
        # their X-Forwarded-* headers; only that many hops are trusted.
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)
    db.init_app(app)
    csrf.init_app(app)
    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    login_manager.login_message = "Sign in to see that page."
    login_manager.localize_callback = gettext
    i18n.init_app(app)
    security.init_app(app)
    search.init_app(app)
    errors.register(app)
    views.register(app)
    cli.register(app)
    return app
