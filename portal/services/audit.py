"""The audit log: append-only records of who did what, and the admin's view and CSV export of them."""
from __future__ import annotations

import csv
import io
import json
from dataclasses import asdict, dataclass
from datetime import date, datetime, timedelta

from flask_babel import lazy_gettext as _l
from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session, aliased

from portal.errors import ValidationError
from portal.models import AuditEvent, User


def record(
    session: Session, actor: User | None, action: str, target_type: str, target_id: int | None, **details
) -> None:
    """Append an audit event in the caller's transaction; details must never hold secrets or note text."""
    session.add(
        AuditEvent(
            actor_id=actor.id if actor else None,
            action=action,
            target_type=target_type,
            target_id=target_id,
            details=details,
        )
    )


@dataclass(frozen=True)
class AuditFilter:
    """What the admin page filters on; every field empty means every event."""

    actor: str = ""  # part of the actor's e-mail address
    action: str = ""  # an action, or its start ("user." for every account event)
    target: str = ""  # a target type ("note"), or type and id ("note:12")
    since: date | None = None
    until: date | None = None  # inclusive

    def as_args(self) -> dict[str, str]:
        return {key: str(value) for key, value in asdict(self).items() if value}


def parse_filter(args: dict[str, str]) -> AuditFilter:
    """Filters from a query string; a malformed one is a ValidationError naming the field."""
    errors, dates = {}, {}
    for name in ("since", "until"):
        text = (args.get(name) or "").strip()
        try:
            dates[name] = date.fromisoformat(text) if text else None
        except ValueError:
            errors[name] = _l("Write dates as YYYY-MM-DD.")
    target = (args.get("target") or "").strip().lower()
    kind, _, ident = target.partition(":")
    if ident and not ident.isdigit():
        errors["target"] = _l("Write a target as a type (note) or a type and an id (note:12).")
    if errors:
        raise ValidationError(errors)
    return AuditFilter(actor=(args.get("actor") or "").strip().lower(), action=(args.get("action") or "").strip(),
                       target=target, **dates)


ActorUser = aliased(User)


def _query(filters: AuditFilter) -> Select:
    query = select(AuditEvent, ActorUser.email).outerjoin(ActorUser, AuditEvent.actor_id == ActorUser.id)
    if filters.actor:
        query = query.where(func.lower(ActorUser.email).contains(filters.actor, autoescape=True))
    if filters.action:
        query = query.where(AuditEvent.action.startswith(filters.action, autoescape=True))
    if filters.target:
        kind, _, ident = filters.target.partition(":")
        query = query.where(AuditEvent.target_type == kind)
        if ident:
            query = query.where(AuditEvent.target_id == int(ident))
    if filters.since:
        query = query.where(AuditEvent.created_at >= datetime.combine(filters.since, datetime.min.time()))
    if filters.until:
        query = query.where(AuditEvent.created_at < datetime.combine(filters.until + timedelta(days=1),
                                                                     datetime.min.time()))
    return query


def events(session: Session, filters: AuditFilter, *, page: int, per_page: int) -> tuple[list, int]:
    """One page of matching events, newest first, as (event, actor e-mail) pairs; and how many match."""
    query = _query(filters)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.execute(
        query.order_by(AuditEvent.id.desc()).limit(per_page).offset((page - 1) * per_page)
    ).all()
    return [tuple(row) for row in rows], total


# A spreadsheet runs a cell that starts with one of these as a formula (CSV injection).
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value) -> str:
    """A value as CSV text that no spreadsheet will run as a formula."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_START) else text


def export_csv(session: Session, filters: AuditFilter, *, actor: User) -> str:
    """Every matching event as CSV, oldest first; the export is itself audited."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["id", "created_at (UTC)", "actor", "action", "target_type", "target_id", "details"])
    count = 0
    for event, email in session.execute(_query(filters).order_by(AuditEvent.id)):
        writer.writerow([csv_cell(value) for value in (
            event.id, event.created_at.isoformat(sep=" ", timespec="seconds"), email or "",
            event.action, event.target_type, event.target_id,
            json.dumps(event.details, ensure_ascii=False, sort_keys=True))])
        count += 1
    record(session, actor, "audit.export", "audit", None, count=count, filters=filters.as_args())
    return out.getvalue()
