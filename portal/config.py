"""Defaults, overridden by PORTAL_* environment variables (Flask's prefixed-env convention)."""
from __future__ import annotations

import os
import secrets
from pathlib import Path

from flask import Flask

DEFAULTS = {
    # A body may hold 200 KB of UTF-8; form-encoded, Japanese text triples in size
    # (%E8%A6%8F per character), so whole requests may be larger before they are refused.
    "MAX_BODY_BYTES": 200 * 1024,
    "MAX_CONTENT_LENGTH": 1024 * 1024,
    "SESSION_COOKIE_HTTPONLY": True,
    "SESSION_COOKIE_SAMESITE": "Lax",
    "REMEMBER_COOKIE_HTTPONLY": True,
    "REMEMBER_COOKIE_SAMESITE": "Lax",
    "WTF_CSRF_TIME_LIMIT": None,
    "BASE_URL": "http://127.0.0.1:5000",
    "INVITATION_DAYS": 7,
    # argon2id cost (the argon2-cffi defaults, RFC 9106's low-memory profile); stored hashes
    # are upgraded at sign-in when these change.
    "ARGON2_TIME_COST": 3,
    "ARGON2_MEMORY_KIB": 65536,
    "SIGN_IN_MAX_FAILURES": 5,
    "SIGN_IN_WINDOW_MINUTES": 15,
    "PAGE_SIZE": 30,
    # Deeper replies are shown on their own "continue this thread" page.
    "THREAD_MAX_DEPTH": 6,
    # Unsubscribe links in digests work without signing in for this long.
    "UNSUBSCRIBE_DAYS": 60,
    # A digest lists this many items and counts the rest in its summary line.
    "DIGEST_MAX_ITEMS": 100,
    # Sessions (portal/services/sessions.py): ended after this long idle, or this long after sign-in.
    "SESSION_IDLE_MINUTES": 30,
    "SESSION_ABSOLUTE_HOURS": 12,
    # Last-seen is written at most this often per session, not on every request.
    "SESSION_TOUCH_SECONDS": 60,
    # Two-factor sign-in: always for moderators and admins; for everyone when this is true.
    "REQUIRE_2FA": False,
    # Between the password and the code: how long the half-signed-in state lasts.
    "SIGN_IN_CODE_MINUTES": 10,
    # Rate limits, "hits/seconds" per user and per address ("off" disables one).
    "RATE_LIMIT_SIGN_IN_USER": "10/600",
    "RATE_LIMIT_SIGN_IN_ADDRESS": "50/600",
    "RATE_LIMIT_POST_USER": "30/600",
    "RATE_LIMIT_POST_ADDRESS": "120/600",
    "RATE_LIMIT_SEARCH_USER": "60/60",
    "RATE_LIMIT_SEARCH_ADDRESS": "300/60",
    # Reverse proxies in front of the app whose X-Forwarded-For is trusted (for addresses).
    "PROXY_COUNT": 0,
}


def load(app: Flask, overrides: dict | None) -> None:
    """Fill app.config from defaults, PORTAL_* variables, then explicit overrides (tests)."""
    app.config.from_mapping(DEFAULTS)
    app.config.from_prefixed_env("PORTAL")
    if overrides:
        app.config.update(overrides)
    Path(app.instance_path).mkdir(parents=True, exist_ok=True)
    app.config.setdefault(
        "DATABASE_URL", f"sqlite:///{Path(app.instance_path) / 'portal.sqlite3'}"
    )
    if not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = _instance_secret(Path(app.instance_path) / "secret_key")
    if str(app.config["BASE_URL"]).startswith("https://"):
        app.config["SESSION_COOKIE_SECURE"] = True
        app.config["REMEMBER_COOKIE_SECURE"] = True


def _instance_secret(path: Path) -> str:
    """Generate the secret key once and keep it, so sessions survive restarts."""
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_hex(32))
    return path.read_text().strip()
