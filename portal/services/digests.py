"""Digests: what moved for each reader in a period, composed from digest events, limited to what the
reader may read when it is sent, and delivered at most once per reader and period.

The activity of a period is loaded once (a few queries, however many readers) and indexed by channel,
topic and note; each reader then costs one query (the channels they may read now, from portal/auth.py)
plus the items their subscriptions match. That keeps a run proportional to readers plus items.
"""
from __future__ import annotations

import heapq
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from operator import attrgetter

from flask import current_app
from flask_babel import gettext as _
from flask_babel import ngettext, pgettext
from sqlalchemy import func, select
from sqlalchemy.orm import Session, aliased, contains_eager

from portal import auth, i18n, mail
from portal.db import utcnow
from portal.errors import NotFound, ValidationError
from portal.models import (
    Channel,
    DigestDelivery,
    DigestEvent,
    DigestRead,
    Note,
    Reply,
    Subscription,
    Topic,
    User,
    note_topics,
)
from portal.models.accounts import SIDES
from portal.services import audit, subscriptions

SENT_FREQUENCIES = ("immediate", "daily", "weekly")
FINISHED = ("sent", "empty")  # delivery states that a rerun leaves alone
PERIOD = {"daily": timedelta(days=1), "weekly": timedelta(days=7)}
# A reader whose last digest is older than this gets one covering this much, not years of backlog.
CATCH_UP = {"immediate": timedelta(days=2), "daily": timedelta(days=7), "weekly": timedelta(days=28)}
# The summary line's parts, in this order. Written out for `make messages`, which extracts only literals.
SUMMARY = {
    "cases": lambda n: ngettext("%(num)d case changed", "%(num)d cases changed", n),
    "updates": lambda n: ngettext("%(num)d update", "%(num)d updates", n),
    "questions": lambda n: ngettext("%(num)d new question", "%(num)d new questions", n),
    "replies": lambda n: ngettext("%(num)d reply", "%(num)d replies", n),
    "answered": lambda n: ngettext("%(num)d question answered", "%(num)d questions answered", n),
    "declined": lambda n: ngettext("%(num)d question declined", "%(num)d questions declined", n),
    "overdue": lambda n: ngettext("%(num)d question overdue", "%(num)d questions overdue", n),
    "awaiting": lambda n: ngettext("%(num)d question awaits your side", "%(num)d questions await your side", n),
}


def sensitive_headline(channel: Channel, *, posted: bool = True) -> str:
    """What e-mail and feeds show instead of a sensitive note: only that it exists, and where."""
    name = channel.name(i18n.ui_lang())
    if posted:
        return _("A sensitive note was posted in %(channel)s", channel=name)
    return _("Activity on a sensitive note in %(channel)s", channel=name)


def record_event(session: Session, kind: str, note: Note, *, reply: Reply | None = None,
                 actor: User | None = None, **details) -> None:
    """Note what a digest must report, in the transaction of the change itself (never note text)."""
    session.add(DigestEvent(kind=kind, note_id=note.id, reply_id=reply.id if reply else None,
                            actor_id=actor.id if actor else None, details=details, created_at=utcnow()))


# ---------------------------------------------------------------------------------------------------
# Periods.


def period_end(frequency: str, at: datetime) -> datetime:
    """The end of the last complete period at `at`: midnight UTC, or Monday midnight for weekly digests."""
    if frequency == "immediate":
        return at
    midnight = datetime.combine(at.date(), time())
    return midnight if frequency == "daily" else midnight - timedelta(days=midnight.weekday())


def period_around(frequency: str, day: date) -> tuple[datetime, datetime]:
    """The daily or weekly period that contains this day, for the in-app digest."""
    start = period_end(frequency, datetime.combine(day, time()))
    return start, start + PERIOD[frequency]


# ---------------------------------------------------------------------------------------------------
# The items of a period.


COUNTS_AS = {"reply": "replies", "case_status": "cases", "note.case": "cases", "note.update": "updates",
             "note.question": "questions"}


@dataclass(eq=False, slots=True)
class Item:
    key: str  # "e123" for an event, "o45" for a question becoming overdue, "a45" for one awaiting
    kind: str  # note, reply, case_status, answered, declined, overdue, awaiting
    note: Note
    at: datetime
    actor: str = ""
    reply_id: int | None = None
    details: dict = field(default_factory=dict)
    topics: list[Topic] = field(default_factory=list)
    # Plain copies of what every reader's composition reads: cheaper than the ORM's attributes.
    channel_id: int = field(init=False)
    counts_as: str = field(init=False)
    order: tuple = field(init=False)

    def __post_init__(self) -> None:
        self.channel_id, self.order = self.note.channel_id, (self.at, self.key)
        kind = f"note.{self.note.kind}" if self.kind == "note" else self.kind
        self.counts_as = COUNTS_AS.get(kind, kind)

    @property
    def is_sensitive(self) -> bool:
        return self.note.is_sensitive

    def headline(self, *, inside_portal: bool = False) -> str:
        """One line for this item in the current language; outside the portal a sensitive note shows
        only its channel."""
        if self.is_sensitive and not inside_portal:
            return sensitive_headline(self.note.channel, posted=self.kind == "note")
        title, kind = self.note.title, self.note.kind
        if self.kind == "note" and kind == "case":
            return _("New case %(title)s", title=title)
        if self.kind == "note" and kind == "question":
            return _("New question %(title)s", title=title)
        if self.kind == "note":
            return _("New update %(title)s", title=title)
        if self.kind == "reply":
            return _("New reply by %(actor)s on %(title)s", actor=self.actor, title=title)
        if self.kind == "case_status":
            return _("Case status %(old)s → %(new)s: %(title)s", old=i18n.label(self.details.get("from")),
                     new=i18n.label(self.details.get("to")), title=title)
        if self.kind == "answered":
            return _("Question answered: %(title)s", title=title)
        if self.kind == "declined":
            return _("Question declined: %(title)s", title=title)
        if self.kind == "overdue":
            return _("Question now overdue: %(title)s", title=title)
        return _("Awaits your side (answer by %(date)s): %(title)s", date=i18n.day(self.note.answer_by), title=title)

    @property
    def anchor(self) -> str | None:
        return f"reply-{self.reply_id}" if self.reply_id else None


class Activity:
    """Every item of [since, until), loaded in a fixed number of queries and indexed for all readers.

    With `reader`, only the channels that reader may read are loaded (the in-app page and feeds).
    """

    def __init__(self, session: Session, since: datetime, until: datetime, *, reader: User | None = None,
                 sides: Iterable[str] = ()):
        self.since, self.until = since, until
        self.by_channel: dict[int, list[Item]] = defaultdict(list)
        self.by_topic: dict[int, list[Item]] = defaultdict(list)
        self.by_note: dict[int, list[Item]] = defaultdict(list)
        self.awaiting: dict[str, dict[str, dict[int, list[Item]]]] = {}
        scope = [auth.channel_is_visible(reader)] if reader is not None else []
        actor = aliased(User)
        events = session.execute(
            select(DigestEvent, Note, actor.name)
            .join(Note, DigestEvent.note_id == Note.id)
            .join(Channel, Note.channel_id == Channel.id)
            .outerjoin(Reply, DigestEvent.reply_id == Reply.id)
            .outerjoin(actor, DigestEvent.actor_id == actor.id)
            .where(DigestEvent.created_at >= since, DigestEvent.created_at < until, Note.deleted_at.is_(None),
                   Reply.deleted_at.is_(None), *scope)
            .order_by(DigestEvent.created_at, DigestEvent.id)
        )
        items = [Item(f"e{event.id}", event.kind, note, event.created_at, name or "", event.reply_id,
                      event.details) for event, note, name in events]
        # A question becomes overdue when its answer-by day has passed: at midnight after that day.
        overdue = session.scalars(
            select(Note).join(Channel, Note.channel_id == Channel.id)
            .where(Note.kind == "question", Note.question_state == "open", Note.deleted_at.is_(None),
                   Note.answer_by >= (since - timedelta(days=1)).date(), Note.answer_by < until.date(), *scope)
        )
        for note in overdue:
            became = datetime.combine(note.answer_by + timedelta(days=1), time())
            if since <= became < until:
                items.append(Item(f"o{note.id}", "overdue", note, became))
        waiting = []
        for side in sides:
            waiting += [Item(f"a{note.id}", "awaiting", note, until) for note in session.scalars(
                select(Note).join(Channel, Note.channel_id == Channel.id)
                .where(Note.kind == "question", Note.question_state == "open", Note.deleted_at.is_(None),
                       Note.addressed_side == side, *scope)
                .order_by(Note.answer_by, Note.id)
            )]
        topics = self._topics(session, {item.note.id for item in items + waiting})
        for item in items:
            item.topics = topics.get(item.note.id, [])
            self._index(item, self.by_channel, self.by_topic, self.by_note)
        for item in waiting:
            item.topics = topics.get(item.note.id, [])
            indexes = self.awaiting.setdefault(item.note.addressed_side,
                                               {"channel": defaultdict(list), "topic": defaultdict(list),
                                                "note": defaultdict(list)})
            self._index(item, indexes["channel"], indexes["topic"], indexes["note"])

    @staticmethod
    def _index(item: Item, by_channel, by_topic, by_note) -> None:
        by_channel[item.note.channel_id].append(item)
        by_note[item.note.id].append(item)
        for topic in item.topics:
            by_topic[topic.id].append(item)

    @staticmethod
    def _topics(session: Session, note_ids: set[int]) -> dict[int, list[Topic]]:
        """The topics of these notes, in chunks so that no database's parameter limit is reached."""
        found: dict[int, list[Topic]] = defaultdict(list)
        ordered = sorted(note_ids)
        for start in range(0, len(ordered), 900):
            rows = session.execute(
                select(note_topics.c.note_id, Topic).join(Topic, note_topics.c.topic_id == Topic.id)
                .where(note_topics.c.note_id.in_(ordered[start:start + 900])).order_by(Topic.slug)
            )
            for note_id, topic in rows:
                found[note_id].append(topic)
        return found


# ---------------------------------------------------------------------------------------------------
# One reader's digest.


@dataclass
class Group:
    topic: Topic | None
    channels: list[tuple[Channel, list[Item]]]


@dataclass
class Digest:
    reader: User
    frequency: str
    since: datetime
    until: datetime
    items: list[Item]  # in time order, at most DIGEST_MAX_ITEMS
    awaiting: list[Item]
    counts: Counter
    total: int
    subscription_ids: list[int]
    group_topic: dict[str, Topic | None]

    @property
    def is_empty(self) -> bool:
        # Questions awaiting the reader's side are a standing list, not news: alone they send nothing.
        return self.total == 0

    @property
    def hidden(self) -> int:
        return self.total - len(self.items)

    def summary(self) -> str:
        """"3 cases changed, 5 updates, 2 questions await your side", in the current language."""
        return pgettext("list separator", ", ").join(
            part(self.counts[key]) for key, part in SUMMARY.items() if self.counts[key])

    def subject(self) -> str:
        """The e-mail's subject: the one item of an immediate message, else the summary."""
        if self.frequency == "immediate" and self.items:
            return self.items[0].headline()
        if self.frequency == "daily":
            return _("Daily digest: %(summary)s", summary=self.summary())
        if self.frequency == "weekly":
            return _("Weekly digest: %(summary)s", summary=self.summary())
        return _("Digest: %(summary)s", summary=self.summary())

    def groups(self) -> list[Group]:
        """Items grouped by topic (the one subscribed to, else the note's first), then by channel."""
        lang = i18n.ui_lang()
        topics: dict[int | None, dict[int, list[Item]]] = defaultdict(lambda: defaultdict(list))
        channels, topic_of = {}, {}
        for item in self.items:
            topic = self.group_topic.get(item.key)
            topics[topic.id if topic else None][item.note.channel_id].append(item)
            channels[item.note.channel_id], topic_of[topic.id if topic else None] = item.note.channel, topic
        order = sorted(topics, key=lambda tid: (tid is None, topic_of[tid].label(lang) if tid else ""))
        return [Group(topic_of[tid], [(channels[cid], rows) for cid, rows in
                                      sorted(topics[tid].items(), key=lambda pair: channels[pair[0]].name(lang))])
                for tid in order]


def compose(session: Session, reader: User, activity: Activity, subs: list[Subscription], *, frequency: str,
            since: datetime | None = None, skip: set[str] = frozenset()) -> Digest:
    """The reader's digest: items of `activity` since `since` matching `subs`, in channels the reader may
    read now, each once; and the open questions addressed to the reader's side in the same scope."""
    since = since or activity.since
    readable = set(session.scalars(select(Channel.id).where(auth.channel_is_visible(reader))))
    side = activity.awaiting.get(reader.side)
    if any(sub.target == "all" for sub in subs):
        sources = [activity.by_channel.get(cid, ()) for cid in readable]
        waiting_sources = [side["channel"].get(cid, ()) for cid in readable] if side else []
    else:
        indexes = {"topic": activity.by_topic, "channel": activity.by_channel, "note": activity.by_note}
        targets = [(sub.target, sub.topic_id or sub.channel_id or sub.note_id) for sub in subs]
        sources = [indexes[target].get(key, ()) for target, key in targets]
        waiting_sources = [side[target].get(key, ()) for target, key in targets] if side else []
    matched: dict[str, Item] = {}
    # The hot loop of a digest run: every item each subscription matches, so plain attributes only.
    for source in sources:
        for item in source:
            key = item.key
            if key not in matched and item.channel_id in readable and item.at >= since and key not in skip:
                matched[key] = item
    waiting = {item.key: item for source in waiting_sources for item in source if item.channel_id in readable}
    counts = Counter(map(attrgetter("counts_as"), matched.values()))
    counts["awaiting"] = len(waiting)
    limit = current_app.config["DIGEST_MAX_ITEMS"]
    items = heapq.nsmallest(limit, matched.values(), key=attrgetter("order"))
    subscribed = {sub.topic_id: sub.topic for sub in subs if sub.target == "topic"}
    # Grouped under the topic subscribed to, else the note's first topic.
    group_topic = {item.key: next((subscribed[t.id] for t in item.topics if t.id in subscribed),
                                  item.topics[0] if item.topics else None) for item in items}
    awaiting = heapq.nsmallest(limit, waiting.values(), key=lambda i: (i.note.answer_by, i.note.id))
    return Digest(reader, frequency, since, activity.until, items, awaiting, counts, len(matched),
                  sorted(sub.id for sub in subs), group_topic)


def personal_digest(session: Session, reader: User, since: datetime, until: datetime) -> Digest:
    """The in-app digest (and personal feed) for any period: every unmuted subscription of the reader."""
    subs = [sub for sub in subscriptions.for_user(session, reader) if not sub.is_muted]
    activity = Activity(session, since, until, reader=reader, sides=[reader.side])
    return compose(session, reader, activity, subs, frequency="in-app")


def read_until(session: Session, reader: User) -> datetime | None:
    """Items after this moment are unread in the reader's in-app digest."""
    marker = session.get(DigestRead, reader.id)
    return marker.read_until if marker else None


def mark_read(session: Session, reader: User, *, until: datetime | None = None) -> None:
    """Mark everything up to now (or `until`) read in the in-app digest."""
    marker = session.get(DigestRead, reader.id) or DigestRead(user_id=reader.id)
    marker.read_until = until or utcnow()
    session.add(marker)


# ---------------------------------------------------------------------------------------------------
# Sending.


@dataclass
class SendReport:
    frequency: str
    period_end: datetime
    dry_run: bool
    sent: int = 0
    already_sent: int = 0
    empty: int = 0
    items: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)
    aborted: str = ""


def _period_key(frequency: str, end: datetime, event_key: str | None = None) -> str:
    return f"immediate:{event_key}" if event_key else f"{frequency}:{end.isoformat(timespec='minutes')}"


def send_digests(session: Session, *, frequency: str, at: datetime, dry_run: bool = False,
                 checkpoint: Callable[[], None] | None = None,
                 progress: Callable[[int], None] | None = None) -> SendReport:
    """Compose and send every reader's digest for the period ending at `at`, each at most once.

    A delivery row per reader and period (per event for immediate delivery) is written and passed to
    `checkpoint` (the caller's commit) before its message goes out and again once it has: a rerun
    skips what was sent and retries what is pending. A refused recipient leaves that delivery pending
    and the run continues; an unreachable server leaves the rest pending and ends the run.
    """
    if frequency not in SENT_FREQUENCIES:
        raise ValidationError({"frequency": "Digests are sent immediate, daily or weekly."})
    checkpoint = checkpoint or session.flush
    until = period_end(frequency, at)
    earliest = until - CATCH_UP[frequency]
    report = SendReport(frequency, until, dry_run)
    by_reader: dict[int, list[Subscription]] = defaultdict(list)
    # The reader comes with the join that chooses the subscriptions (sub.user): no second query for them.
    for sub in session.scalars(
        select(Subscription).join(User, Subscription.user_id == User.id).options(contains_eager(Subscription.user))
        .where(Subscription.frequency == frequency, Subscription.is_muted.is_(False), User.is_active.is_(True),
               User.password_hash.is_not(None))
        .order_by(Subscription.user_id, Subscription.id)
    ):
        by_reader[sub.user_id].append(sub)
    if not by_reader:
        return report
    last_end = dict(session.execute(
        select(DigestDelivery.user_id, func.max(DigestDelivery.period_end))
        .where(DigestDelivery.frequency == frequency, DigestDelivery.status.in_(FINISHED))
        .group_by(DigestDelivery.user_id)
    ).all())
    deliveries: dict[int, dict[str, DigestDelivery]] = defaultdict(dict)
    for delivery in session.scalars(
        select(DigestDelivery).where(DigestDelivery.frequency == frequency, DigestDelivery.period_end >= earliest)
    ):
        deliveries[delivery.user_id][delivery.period_key] = delivery
    since = {user_id: _since(frequency, until, earliest, subs, last_end.get(user_id))
             for user_id, subs in by_reader.items()}
    activity = Activity(session, min(since.values()), until,
                        sides=SIDES if frequency != "immediate" else ())
    with mail.transport() as transport:
        for number, (user_id, subs) in enumerate(by_reader.items(), 1):
            if not report.aborted:
                _send_to_reader(session, report, transport, subs[0].user, subs, activity, since[user_id],
                                deliveries[user_id], checkpoint)
            if progress:
                progress(number)
    return report


def _since(frequency: str, until: datetime, earliest: datetime, subs: list[Subscription],
           last_end: datetime | None) -> datetime:
    """Where a reader's digest starts: where their last one ended (so a missed run loses nothing), at
    most CATCH_UP back; an immediate subscription starts when it was made."""
    if frequency == "immediate":
        return max(earliest, min(sub.created_at for sub in subs))
    return max(earliest, min(last_end or until - PERIOD[frequency], until))


def _send_to_reader(session, report, transport, reader, subs, activity, since, deliveries, checkpoint):
    frequency, until, dry_run = report.frequency, report.period_end, report.dry_run
    if frequency == "immediate":
        done = {key.partition(":")[2] for key, d in deliveries.items() if d.status in FINISHED}
        digest = compose(session, reader, activity, subs, frequency=frequency, since=since, skip=done)
        singles = [_single(digest, item, subs) for item in digest.items]
    else:
        key = _period_key(frequency, until)
        if key in deliveries and deliveries[key].status in FINISHED:
            report.already_sent += 1
            return
        singles = [(key, compose(session, reader, activity, subs, frequency=frequency, since=since))]
    for key, digest in singles:
        existing = deliveries.get(key)
        if digest.is_empty:
            report.empty += 1
            if not dry_run and frequency != "immediate":
                _delivery(session, existing, reader, key, digest, "empty", deliveries)
                checkpoint()
            continue
        report.items += digest.total + len(digest.awaiting)
        if dry_run:
            report.sent += 1
            continue
        delivery = _delivery(session, existing, reader, key, digest, "pending", deliveries)
        checkpoint()
        try:
            deliver(digest, via=transport)
        except mail.MailError as error:
            delivery.error = str(error)[:500]
            audit.record(session, None, "digest.fail", "user", reader.id, frequency=frequency, period=key)
            checkpoint()
            report.failed.append((reader.email, str(error)))
            if transport.uses_smtp and transport.client is None:
                report.aborted = str(error)  # the server is gone: the rest stays pending for the next run
                return
            continue
        delivery.status, delivery.sent_at, delivery.error = "sent", utcnow(), ""
        audit.record(session, None, "digest.send", "user", reader.id, frequency=frequency, period=key,
                     items=digest.total)
        checkpoint()
        report.sent += 1


def _single(digest: Digest, item: Item, subs: list[Subscription]) -> tuple[str, Digest]:
    """One immediate message per event: the digest cut down to that item, and its unsubscribe link to
    the subscriptions that matched it."""
    topic_ids = {topic.id for topic in item.topics}
    matching = [sub.id for sub in subs if sub.target == "all" or sub.topic_id in topic_ids
                or sub.channel_id == item.channel_id or sub.note_id == item.note.id]
    one = Digest(digest.reader, "immediate", item.at, digest.until, [item], [],
                 Counter({item.counts_as: 1}), 1, matching, digest.group_topic)
    return _period_key("immediate", digest.until, item.key), one


def _delivery(session: Session, existing: DigestDelivery | None, reader: User, key: str, digest: Digest,
              status: str, earlier: dict[str, DigestDelivery]) -> DigestDelivery:
    delivery = existing or DigestDelivery(user_id=reader.id, frequency=digest.frequency, period_key=key)
    delivery.period_start, delivery.period_end = digest.since, digest.until
    delivery.status, delivery.item_count = status, digest.total + len(digest.awaiting)
    session.add(delivery)
    earlier[key] = delivery
    if digest.frequency != "immediate":
        # An earlier period left pending (a failed run) is covered by this digest, which starts where
        # the last one sent ended.
        for other in earlier.values():
            if other.status == "pending" and other.period_end < digest.until:
                other.status = "superseded"
    return delivery


def deliver(digest: Digest, *, via: mail.Transport | None = None):
    """E-mail one digest to its reader, in their language and time zone, with RFC 8058 one-click
    unsubscribe for its subscriptions."""
    reader = digest.reader
    link = unsubscribe_link(reader, digest.subscription_ids)
    headers = {"List-Unsubscribe": f"<{link}>", "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"}
    with i18n.as_reader(reader):
        return mail.send_email(reader.email, digest.subject(), "digest", headers=headers, via=via,
                               digest=digest, unsubscribe=link)


def unsubscribe_link(reader: User, subscription_ids: list[int]) -> str:
    token = subscriptions.unsubscribe_token(reader, subscription_ids)
    return f"{current_app.config['BASE_URL'].rstrip('/')}/unsubscribe/{token}"


# ---------------------------------------------------------------------------------------------------
# Atom feeds: the same redaction as e-mail, since a feed reader is outside the portal too.


@dataclass
class FeedEntry:
    key: str
    note: Note
    title: str
    updated: datetime
    html: str | None  # None for sensitive notes: their text never leaves the portal
    anchor: str | None = None


def note_entries(rows: Iterable[Note]) -> list[FeedEntry]:
    """Feed entries for notes (a channel's or a topic's feed), in the current language."""
    entries = []
    for note in rows:
        title = sensitive_headline(note.channel) if note.is_sensitive else note.title
        entries.append(FeedEntry(f"note-{note.id}", note, title, note.updated_at,
                                 None if note.is_sensitive else note.body_html))
    return entries


def digest_entries(digest: Digest) -> list[FeedEntry]:
    """Feed entries for a personal digest, newest first, in the current language."""
    return [FeedEntry(item.key, item.note, item.headline(), item.at, None, item.anchor)
            for item in reversed(digest.items)]


def topic_notes(session: Session, reader: User, slug: str, *, limit: int = 50) -> tuple[Topic, list[Note]]:
    """A topic's most recently active notes that the reader may read, or NotFound for an unknown topic."""
    topic = session.scalar(select(Topic).where(Topic.slug == slug))
    if topic is None:
        raise NotFound("topic")
    rows = session.scalars(
        auth.visible_notes(reader).join(note_topics, note_topics.c.note_id == Note.id)
        .where(note_topics.c.topic_id == topic.id)
        .order_by(Note.last_activity_at.desc(), Note.id.desc()).limit(limit)
    )
    return topic, list(rows)
