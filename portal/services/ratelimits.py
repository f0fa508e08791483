"""Rate limits on sign-in, posting and search, per user and per address.

Fixed-window counters in the database, so every gunicorn worker and every host sharing the database
counts the same hits. Limits are settings "hits/seconds" (RATE_LIMIT_<ACTION>_USER, _ADDRESS)."""
from __future__ import annotations

from datetime import datetime, timedelta

from flask import current_app
from flask_babel import gettext as _
from flask_babel import ngettext
from sqlalchemy import delete
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from portal.errors import RateLimited, ValidationError
from portal.models import RateLimitCounter

EPOCH = datetime(1970, 1, 1)  # timestamps are naive UTC (portal.db.utcnow)


def parse_limit(value: str) -> tuple[int, int] | None:
    """ "hits/seconds" as a pair, or None for "off"; anything else is a configuration error."""
    text = str(value).strip().lower()
    if text == "off":
        return None
    hits, _, seconds = text.partition("/")
    if not (hits.isdigit() and seconds.isdigit() and int(hits) > 0 and int(seconds) > 0):
        raise ValidationError(f"A rate limit is written hits/seconds (e.g. 30/600) or off, not {value!r}.")
    return int(hits), int(seconds)


def _increment(session: Session, key: str, window_start: datetime, expires_at: datetime) -> int:
    """Add one hit in a single statement (INSERT … ON CONFLICT DO UPDATE), safe under concurrency."""
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    statement = dialect.insert(RateLimitCounter).values(
        key=key, window_start=window_start, expires_at=expires_at, hits=1)
    statement = statement.on_conflict_do_update(
        index_elements=["key", "window_start"], set_={"hits": RateLimitCounter.hits + 1}
    ).returning(RateLimitCounter.hits)
    return session.execute(statement).scalar_one()


def hit(session: Session, action: str, *, user_key: str | None, address: str | None, now: datetime) -> None:
    """Count one attempt at this action by this user and from this address; RateLimited when either is
    over its limit. The caller commits: at once when every attempt counts, or with the action when
    only attempts that were carried out count (a form refused as invalid does not)."""
    session.execute(delete(RateLimitCounter).where(RateLimitCounter.expires_at <= now))
    retry_after = 0
    for scope, value in (("user", user_key), ("address", address)):
        limit = parse_limit(current_app.config[f"RATE_LIMIT_{action.upper()}_{scope.upper()}"])
        if limit is None or not value:
            continue
        hits, seconds = limit
        elapsed = int((now - EPOCH).total_seconds())
        window_start = EPOCH + timedelta(seconds=elapsed - elapsed % seconds)
        window_end = window_start + timedelta(seconds=seconds)
        if _increment(session, f"{action}:{scope}:{value.lower()}", window_start, window_end) > hits:
            retry_after = max(retry_after, int((window_end - now).total_seconds()) + 1)
    if retry_after:
        raise RateLimited(_refusal(action, retry_after), retry_after=retry_after)


def _refusal(action: str, seconds: int) -> str:
    """"Too many searches in a short time. Try again in 40 seconds." in the reader's language."""
    wait = (ngettext("%(num)d second", "%(num)d seconds", seconds) if seconds < 90
            else ngettext("%(num)d minute", "%(num)d minutes", -(-seconds // 60)))
    if action == "sign_in":
        return _("Too many sign-in attempts in a short time. Try again in %(wait)s.", wait=wait)
    if action == "post":
        return _("Too many posts in a short time. Try again in %(wait)s.", wait=wait)
    return _("Too many searches in a short time. Try again in %(wait)s.", wait=wait)
