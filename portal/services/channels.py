"""Channels and their membership."""
from __future__ import annotations

from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from portal import auth
from portal.errors import NotFound, ValidationError
from portal.models import Channel, ChannelMembership, Note, User
from portal.models.channels import VISIBILITIES
from portal.services import audit
from portal.services.accounts import SLUG


def _validate(session: Session, data: dict, channel: Channel | None) -> dict:
    clean = {
        "slug": str(data.get("slug", channel.slug if channel else "")).strip().lower(),
        "name_en": str(data.get("name_en", "")).strip(),
        "name_ja": str(data.get("name_ja", "")).strip(),
        "description_en": str(data.get("description_en", "")).strip(),
        "description_ja": str(data.get("description_ja", "")).strip(),
        "visibility": str(data.get("visibility", "")).strip(),
    }
    errors = {}
    if not SLUG.match(clean["slug"]):
        errors["slug"] = _l("Use lowercase letters, digits and hyphens.")
    else:
        existing = session.scalar(select(Channel).where(Channel.slug == clean["slug"]))
        if existing is not None and existing is not channel:
            errors["slug"] = _l("A channel with this slug exists.")
    if not clean["name_en"]:
        errors["name_en"] = _l("Give the channel an English name.")
    if clean["visibility"] not in VISIBILITIES:
        errors["visibility"] = _l("Visibility is joint, eu, jp or private.")
    if errors:
        raise ValidationError(errors)
    return clean


def create_channel(session: Session, data: dict, *, actor: User | None) -> Channel:
    """Create a channel from name, descriptions (en/ja), slug and visibility."""
    channel = Channel(**_validate(session, data, None))
    session.add(channel)
    session.flush()
    audit.record(session, actor, "channel.create", "channel", channel.id, visibility=channel.visibility)
    return channel


def update_channel(session: Session, channel: Channel, data: dict, *, actor: User) -> Channel:
    """Rename, re-describe or change the visibility of a channel (the slug stays: it is a permalink)."""
    clean = _validate(session, {**data, "slug": channel.slug}, channel)
    if clean["visibility"] != channel.visibility:
        audit.record(session, actor, "channel.visibility", "channel", channel.id,
                     old=channel.visibility, new=clean["visibility"])
    changed = sorted(key for key, value in clean.items() if getattr(channel, key) != value)
    for key, value in clean.items():
        setattr(channel, key, value)
    if changed:
        audit.record(session, actor, "channel.update", "channel", channel.id, fields=changed)
    return channel


def set_archived(session: Session, channel: Channel, is_archived: bool, *, actor: User) -> None:
    channel.is_archived = is_archived
    audit.record(session, actor, "channel.archive" if is_archived else "channel.unarchive",
                 "channel", channel.id)


def channel_by_slug(session: Session, slug: str) -> Channel:
    """Any channel by slug, for administration; readers go through auth.channel_for."""
    channel = session.scalar(select(Channel).where(Channel.slug == slug))
    if channel is None:
        raise NotFound(f"No channel {slug!r}.")
    return channel


def add_member(
    session: Session, channel: Channel, user: User, *, is_moderator: bool = False, actor: User | None
) -> ChannelMembership:
    """Add a named member (or make them a channel moderator); they must be allowed to see the channel."""
    if channel.visibility in ("eu", "jp") and user.side != channel.visibility:
        raise ValidationError(
            {"email": f"{user.email} is on the {user.side.upper()} side; this channel is "
                      f"{channel.visibility.upper()} only."}
        )
    membership = session.get(ChannelMembership, (channel.id, user.id))
    if membership is None:
        membership = ChannelMembership(channel=channel, user=user)
        session.add(membership)
    membership.is_moderator = is_moderator
    session.flush()
    audit.record(session, actor, "channel.add_member", "channel", channel.id,
                 user_id=user.id, is_moderator=is_moderator)
    return membership


def remove_member(session: Session, channel: Channel, user: User, *, actor: User) -> None:
    membership = session.get(ChannelMembership, (channel.id, user.id))
    if membership is not None:
        session.delete(membership)
        audit.record(session, actor, "channel.remove_member", "channel", channel.id, user_id=user.id)


def members(session: Session, channel: Channel) -> list[ChannelMembership]:
    return list(
        session.scalars(
            select(ChannelMembership)
            .where(ChannelMembership.channel_id == channel.id)
            .join(User)
            .order_by(User.name)
        )
    )


def list_for(session: Session, user: User, *, include_archived: bool = True) -> list[tuple[Channel, int]]:
    """Channels this user may see, with their live note counts."""
    counts = (
        select(Note.channel_id, func.count(Note.id).label("n"))
        .where(Note.deleted_at.is_(None))
        .group_by(Note.channel_id)
        .subquery()
    )
    query = (
        select(Channel, func.coalesce(counts.c.n, 0))
        .outerjoin(counts, counts.c.channel_id == Channel.id)
        .where(auth.channel_is_visible(user))
        .order_by(Channel.is_archived, Channel.name_en)
    )
    if not include_archived:
        query = query.where(Channel.is_archived.is_(False))
    return [(channel, count) for channel, count in session.execute(query)]


def list_all(session: Session) -> list[Channel]:
    """Every channel, for administration of names and membership (not their notes)."""
    return list(session.scalars(select(Channel).order_by(Channel.name_en)))
