"""Subscriptions (a topic, a channel, one note, or everything a reader may see), mute, unsubscribe links
and the per-user Atom feed token."""
from __future__ import annotations

import secrets

from flask import current_app
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from portal import auth, i18n
from portal.db import utcnow
from portal.errors import NotFound, ValidationError
from portal.models import Channel, FeedToken, Subscription, Topic, User
from portal.models.digests import FREQUENCIES, TARGETS
from portal.security import token_hash
from portal.services import audit

DEFAULT_FREQUENCY = "weekly"
UNSUBSCRIBE_SALT = "unsubscribe"
BAD_LINK = _l("This unsubscribe link is not valid. Check that it was copied whole, or manage your "
              "subscriptions after signing in.")


def _check_frequency(frequency: str) -> str:
    if frequency not in FREQUENCIES:
        raise ValidationError({"frequency": _l("The frequency is immediate, daily, weekly or in-app.")})
    return frequency


def subscribe(
    session: Session,
    user: User,
    *,
    frequency: str,
    topic: str | None = None,
    channel: str | None = None,
    note_id: int | None = None,
) -> Subscription:
    """Follow a topic (by slug), a channel (by slug), one note, or with none of them everything the
    user may see. Subscribing again to the same thing changes its frequency and unmutes it."""
    _check_frequency(frequency)
    if sum(value is not None for value in (topic, channel, note_id)) > 1:
        raise ValidationError(_l("Subscribe to one topic, channel or note at a time."))
    target, fields = "all", {"topic_id": None, "channel_id": None, "note_id": None}
    if topic is not None:
        found = session.scalar(select(Topic).where(Topic.slug == topic.strip()))
        if found is None:
            raise ValidationError({"topic": _l("There is no topic '%(topic)s'; choose one from the list of topics.", topic=topic)})
        target, fields["topic_id"] = "topic", found.id
    elif channel is not None:
        # Missing and invisible channels get the same answer, so the error confirms nothing.
        found = session.scalar(auth.visible_channels(user).where(Channel.slug == channel.strip()))
        if found is None:
            raise ValidationError({"channel": _l("There is no channel '%(channel)s' that you can read.", channel=channel)})
        target, fields["channel_id"] = "channel", found.id
    elif note_id is not None:
        try:
            auth.note_for(session, user, note_id)
        except NotFound:
            raise ValidationError({"note": _l("There is no note %(id)s that you can read.", id=note_id)}) from None
        target, fields["note_id"] = "note", note_id
    existing = session.scalar(
        select(Subscription).where(Subscription.user_id == user.id, Subscription.target == target,
                                   *(getattr(Subscription, key).is_(value) if value is None
                                     else getattr(Subscription, key) == value for key, value in fields.items()))
    )
    subscription = existing or Subscription(user_id=user.id, target=target, **fields)
    subscription.frequency, subscription.is_muted = frequency, False
    session.add(subscription)
    session.flush()
    audit.record(session, user, "subscription.add", "subscription", subscription.id,
                 target=target, frequency=frequency)
    return subscription


def add_defaults(session: Session, user: User) -> None:
    """What a new official starts with: a weekly digest of everything they may read."""
    session.add(Subscription(user_id=user.id, target="all", frequency=DEFAULT_FREQUENCY))


def for_user(session: Session, user: User) -> list[Subscription]:
    """The user's subscriptions, everything first, then topics, channels and notes."""
    order = {target: position for position, target in enumerate(TARGETS)}
    rows = session.scalars(select(Subscription).where(Subscription.user_id == user.id).order_by(Subscription.id))
    return sorted(rows, key=lambda s: order[s.target])


def subscription_for(session: Session, user: User, subscription_id: int) -> Subscription:
    """One of the user's own subscriptions, or NotFound."""
    return auth.own(session, user, Subscription, subscription_id, "subscription")


def set_muted(session: Session, subscription: Subscription, is_muted: bool, *, actor: User | None) -> None:
    """Mute (keep but send nothing) or unmute a subscription."""
    if subscription.is_muted != is_muted:
        subscription.is_muted = is_muted
        audit.record(session, actor, "subscription.mute" if is_muted else "subscription.unmute",
                     "subscription", subscription.id)


def remove(session: Session, subscription: Subscription, *, actor: User | None) -> None:
    """Delete a subscription."""
    audit.record(session, actor, "subscription.remove", "subscription", subscription.id,
                 target=subscription.target)
    session.delete(subscription)


def find(session: Session, user: User, *, topic: str | None = None, channel: str | None = None,
         note_id: int | None = None) -> Subscription:
    """The user's subscription to exactly this target (everything when none is given), or NotFound."""
    query = select(Subscription).where(Subscription.user_id == user.id)
    if topic is not None:
        query = query.join(Topic, Subscription.topic_id == Topic.id).where(Topic.slug == topic)
    elif channel is not None:
        query = query.join(Channel, Subscription.channel_id == Channel.id).where(Channel.slug == channel)
    elif note_id is not None:
        query = query.where(Subscription.note_id == note_id)
    else:
        query = query.where(Subscription.target == "all")
    subscription = session.scalar(query)
    if subscription is None:
        raise NotFound(f"{user.email} has no such subscription.")
    return subscription


def describe(subscription: Subscription) -> str:
    """A short label in the current language: "Topic: App stores", "Channel: …", "Note #12",
    "Everything you can read" (English in the CLI)."""
    lang = i18n.ui_lang()
    if subscription.target == "topic":
        return _("Topic: %(name)s", name=subscription.topic.label(lang))
    if subscription.target == "channel":
        return _("Channel: %(name)s", name=subscription.channel.name(lang))
    if subscription.target == "note":
        return _("Note #%(id)s", id=subscription.note_id)
    return _("Everything you can read")


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=UNSUBSCRIBE_SALT)


def unsubscribe_token(user: User, subscription_ids: list[int]) -> str:
    """A signed token that mutes these subscriptions of this user, valid without signing in."""
    return _serializer().dumps({"u": user.id, "s": sorted(subscription_ids)})


def unsubscribe_targets(session: Session, token: str) -> list[Subscription]:
    """The subscriptions an unsubscribe token names, or ValidationError saying why it cannot be used."""
    max_age = current_app.config["UNSUBSCRIBE_DAYS"] * 86400
    try:
        payload = _serializer().loads(token, max_age=max_age)
    except SignatureExpired:
        raise ValidationError(_l("This unsubscribe link has expired. Sign in to manage your subscriptions.")) from None
    except BadSignature:
        raise ValidationError(BAD_LINK) from None
    if not isinstance(payload, dict) or not isinstance(payload.get("s"), list):
        raise ValidationError(BAD_LINK)
    ids = [value for value in payload["s"] if isinstance(value, int)]
    return list(session.scalars(
        select(Subscription).where(Subscription.id.in_(ids), Subscription.user_id == payload.get("u"))
        .order_by(Subscription.id)
    ))


def unsubscribe(session: Session, token: str) -> list[Subscription]:
    """Mute what the token names (RFC 8058 one-click); running it again changes nothing."""
    targets = unsubscribe_targets(session, token)
    for subscription in targets:
        set_muted(session, subscription, True, actor=None)
    return targets


def issue_feed_token(session: Session, user: User) -> str:
    """A new feed token for the user's Atom URLs; the previous one stops working. Shown once."""
    token = secrets.token_urlsafe(32)
    existing = session.get(FeedToken, user.id)
    if existing is None:
        session.add(FeedToken(user_id=user.id, token_hash=token_hash(token)))
    else:
        existing.token_hash, existing.created_at = token_hash(token), utcnow()
    audit.record(session, user, "feed_token.issue", "user", user.id)
    return token


def revoke_feed_token(session: Session, user: User) -> bool:
    """Stop the user's feed URLs working; False when there was no token."""
    removed = session.execute(delete(FeedToken).where(FeedToken.user_id == user.id)).rowcount
    if removed:
        audit.record(session, user, "feed_token.revoke", "user", user.id)
    return bool(removed)


def has_feed_token(session: Session, user: User) -> bool:
    return session.get(FeedToken, user.id) is not None


def user_for_feed_token(session: Session, token: str) -> User:
    """The active official whose feed token this is, or NotFound."""
    user = session.scalar(
        select(User).join(FeedToken, FeedToken.user_id == User.id)
        .where(FeedToken.token_hash == token_hash(token), User.is_active.is_(True))
    )
    if user is None:
        raise NotFound("feed")
    return user
