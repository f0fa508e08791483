"""The authorization matrix: every route, for every kind of official (and nobody), on every resource.

For each rule in app.url_map (only `static` is skipped), `ROUTES` says which resources to try, what to
send, and what each actor must get. The expectations are written out here from the portal's rules,
independently of portal/auth.py, so a change there that widens or narrows access fails this file:

* A channel is visible to everyone if `joint`, to one side's officials if `eu`/`jp`, to its named members
  if `private`. Admins administer users, channels and organisations but read only what their own side and
  memberships allow.
* Whatever an official may not see is 404, indistinguishable from a missing thing. Seeing but not being
  allowed (someone else's note, an archived channel) is 403.
* Anonymous requests are sent to /login, except /login and /invitations/<token>; /admin is 404 for
  everyone but admins.

Each request also checks what a user or an attacker would notice besides the status:
* a page never shows the title or text of a note or reply from a channel the user may not see (nor, to
  non-admins, of a deleted note; to nobody, the text of a deleted reply), nor an invisible channel's name
  outside /admin;
* every 404 a user gets is the same page, so "hidden" and "missing" cannot be told apart;
* a request that is refused (or a GET) changes nothing in the database, and an allowed action does change
  it; redirects of signed-out users go to /login and those of signed-in users do not (except sign-out).

`test_lists_show_exactly_the_visible_notes` checks the lists (/, /channels, channel pages and feeds,
/regulations/dsa, /admin/deleted) both ways: every visible note is listed, and no other.

Requests that change state are undone afterwards by restoring every table to a snapshot, so each request
runs against the same world. Each actor gets a fresh `world` (one signed-in session, reused per request).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Callable
from urllib.parse import urlsplit

import pyotp
import pytest
from sqlalchemy import and_, select

import portal.models  # noqa: F401  (every table on Base.metadata)
from portal.models import Notification, UserSession
from portal.db import Base, engine, utcnow
from portal.services import accounts, notes, replies, sessions, twofactor
from portal.services import tokens as api_tokens
from tests.conftest import PASSWORD, login

# ---------------------------------------------------------------------------------------------------
# Who is who: the model of the `world` fixture (checked against the real world in `build`).

ACTORS = ("anonymous", "eu_member", "jp_member", "outsider", "eu_moderator", "eu_admin", "jp_admin")
SIDE = {"eu_member": "eu", "jp_member": "jp", "outsider": "eu", "eu_moderator": "eu", "eu_admin": "eu",
        "jp_admin": "jp"}
ROLE = {"eu_member": "member", "jp_member": "member", "outsider": "member", "eu_moderator": "moderator",
        "eu_admin": "admin", "jp_admin": "admin"}
CHANNELS = {"joint": "joint", "eu": "eu", "jp": "jp", "private": "private", "archived": "joint"}
PRIVATE_MEMBERS = {"eu_member", "jp_member"}
PRIVATE_MODERATORS = {"jp_member"}
# Authors of the notes (and of their replies): the world's questions, and the cases and deleted updates
# added here. Case authors differ from question authors so "author" and "moderator" are told apart.
QUESTION_AUTHOR = {"joint": "eu_member", "eu": "eu_member", "jp": "jp_member", "private": "jp_member",
                   "archived": "eu_member"}
CASE_AUTHOR = {"joint": "jp_member", "eu": "outsider", "jp": "jp_admin", "private": "eu_member",
               "archived": "jp_member"}
MISSING_ID = 987654321
CSRF_TOKEN = re.compile(r'(?<=name="csrf_token" value=")[^"]*')


@dataclass(frozen=True)
class Actor:
    name: str

    @property
    def anonymous(self) -> bool:
        return self.name == "anonymous"

    @property
    def side(self) -> str | None:
        return SIDE.get(self.name)

    @property
    def is_admin(self) -> bool:
        return ROLE.get(self.name) == "admin"

    def sees(self, channel: Chan) -> bool:
        if self.anonymous or not channel.exists:
            return False
        visibility = CHANNELS[channel.key]
        if visibility == "private":
            return self.name in PRIVATE_MEMBERS
        return visibility in ("joint", self.side)

    def moderates(self, channel: Chan) -> bool:
        """Site moderators and admins moderate every channel they see; channel moderators theirs."""
        if ROLE.get(self.name) in ("moderator", "admin"):
            return True
        return CHANNELS[channel.key] == "private" and self.name in PRIVATE_MODERATORS


# ---------------------------------------------------------------------------------------------------
# Resources.


@dataclass(frozen=True)
class Chan:
    key: str  # "joint" ... "archived", or "missing"
    slug: str
    exists: bool = True

    @property
    def archived(self) -> bool:
        return self.key == "archived"

    @property
    def label(self) -> str:
        return f"channel:{self.key}"


@dataclass(frozen=True)
class NoteRes:
    key: str  # e.g. "question@private"
    id: int
    channel: Chan
    kind: str = "question"
    author: str = ""
    deleted: bool = False
    exists: bool = True
    reply_id: int = 0  # one live reply of this note (for accept and subthread)
    title: str = ""

    @property
    def label(self) -> str:
        return f"note:{self.key}"

    def addressed_side(self) -> str:
        return "jp" if SIDE[self.author] == "eu" else "eu"


@dataclass(frozen=True)
class ReplyRes:
    key: str
    id: int
    note: NoteRes
    author: str = ""
    deleted: bool = False
    exists: bool = True

    @property
    def label(self) -> str:
        return f"reply:{self.key}"


@dataclass(frozen=True)
class NotificationRes:
    key: str
    id: int
    owner: str
    note: NoteRes

    @property
    def label(self) -> str:
        return f"notification:{self.key}"


@dataclass(frozen=True)
class Res:
    """One way of filling a rule's arguments: the values, and the resource they stand for."""

    label: str
    values: dict
    obj: object = None


@dataclass(frozen=True)
class Secret:
    text: str
    channel: str  # channel key
    kind: str  # "live", "deleted-note" (admins who see the channel may), "deleted-reply" (nobody), "name"


@dataclass
class Fx:
    """The world, extended with cases, deleted notes and replies, a pending invitation."""

    channels: dict[str, Chan]
    notes: list[NoteRes]
    replies: list[ReplyRes]
    secrets: list[Secret]
    users: dict[str, object]
    pending_user_id: int
    invitation_token: str
    eu_org_id: int
    missing_channel: Chan
    tokens: dict[str, int] = field(default_factory=dict)  # each official's API token id, by actor name
    token_texts: dict[str, str] = field(default_factory=dict)
    user_sessions: dict[str, int] = field(default_factory=dict)  # another signed-in browser of these users
    notifications: list[NotificationRes] = field(default_factory=list)

    def note(self, key: str) -> NoteRes:
        return next(n for n in self.notes if n.key == key)

    def reply(self, key: str) -> ReplyRes:
        return next(r for r in self.replies if r.key == key)


def build(db, world) -> Fx:
    """Add to the world, per channel: a case (with a reply and a milestone), a deleted case (likewise), and a
    deleted reply to the question; and a pending invitation."""
    users = {name: getattr(world, name) for name in SIDE}
    assert {name: u.organisation.side for name, u in users.items()} == SIDE
    assert {name: u.role for name, u in users.items()} == ROLE
    archived_channel = world.archived
    archived_channel.is_archived = False  # open it while we add to it
    chans, note_list, reply_list, secrets = {}, [], [], []
    for key, visibility in CHANNELS.items():
        channel = getattr(world, key)
        assert channel.visibility == visibility
        chan = chans[key] = Chan(key, channel.slug)
        secrets += [Secret(channel.name_en, key, "name"), Secret(channel.name_ja, key, "name")]

        question, first = world.notes[key], world.replies[key]
        assert question.author_id == users[QUESTION_AUTHOR[key]].id and first.author_id == question.author_id
        q = NoteRes(f"question@{key}", question.id, chan, "question", QUESTION_AUTHOR[key], reply_id=first.id,
                    title=question.title)
        reply_list.append(ReplyRes(f"answer@{key}", first.id, q, QUESTION_AUTHOR[key]))
        secrets += [Secret(question.title, key, "live"), Secret(question.body, key, "live"),
                    Secret(first.body, key, "live")]

        gone = replies.post_reply(db, question, users[QUESTION_AUTHOR[key]], f"Deleted reply text in {key}")
        replies.delete_reply(db, gone, users[QUESTION_AUTHOR[key]])
        reply_list.append(ReplyRes(f"deleted-reply@{key}", gone.id, q, QUESTION_AUTHOR[key], deleted=True))
        secrets.append(Secret(gone.body, key, "deleted-reply"))

        author = users[CASE_AUTHOR[key]]
        case = notes.post_note(db, channel, author, "case", {
            "title": f"Case title in {key}", "body": f"Case body in {key}", "lang": "en", "topics": ["dsa"],
            "articles": "DSA Art. 16", "case_status": "open",
            "milestones": f"{date.today() + timedelta(days=5)} Milestone due in {key}"})
        case_reply = replies.post_reply(db, case, author, f"Case reply text in {key}")
        c = NoteRes(f"case@{key}", case.id, chan, "case", CASE_AUTHOR[key], reply_id=case_reply.id,
                    title=case.title)
        reply_list.append(ReplyRes(f"case-reply@{key}", case_reply.id, c, CASE_AUTHOR[key]))
        secrets += [Secret(case.title, key, "live"), Secret(case.body, key, "live"),
                    Secret(case_reply.body, key, "live"), Secret(f"Milestone due in {key}", key, "live")]

        author = users[QUESTION_AUTHOR[key]]
        dead = notes.post_note(db, channel, author, "case", {
            "title": f"Deleted case title in {key}", "body": f"Deleted case body in {key}", "lang": "en",
            "topics": ["dsa"], "articles": "DSA Art. 16",
            "milestones": f"{date.today() + timedelta(days=6)} Deleted case milestone in {key}"})
        orphan = replies.post_reply(db, dead, author, f"Reply under deleted case in {key}")
        notes.delete_note(db, dead, author)
        d = NoteRes(f"deleted-note@{key}", dead.id, chan, "case", QUESTION_AUTHOR[key], deleted=True,
                    reply_id=orphan.id, title=dead.title)
        reply_list.append(ReplyRes(f"orphan-reply@{key}", orphan.id, d, QUESTION_AUTHOR[key]))
        # A deleted note, its milestones and the replies under it are shown (on its page) only to admins.
        secrets += [Secret(dead.title, key, "deleted-note"), Secret(dead.body, key, "deleted-note"),
                    Secret(orphan.body, key, "deleted-note"),
                    Secret(f"Deleted case milestone in {key}", key, "deleted-note")]
        note_list += [q, c, d]
    archived_channel.is_archived = True

    pending = accounts.create_user(db, email="nina@ec.example.eu", name="Nina Pending",
                                   organisation=users["eu_member"].organisation, role="member")
    link = accounts.invite(db, pending, actor=users["eu_admin"])
    issued = {name: api_tokens.create_token(db, user, scope="write", actor=None) for name, user in users.items()}
    # A member who chose two-factor sign-in (so an admin has something to reset), and sessions elsewhere.
    secret = twofactor.new_secret()
    twofactor.enrol(db, users["outsider"], secret, pyotp.TOTP(secret).now(), now=utcnow())
    for name in ("eu_member", "jp_admin"):
        sessions.start(db, users[name], address="192.0.2.1", browser="Elsewhere", two_factor=True)
    db.commit()
    missing = Chan("missing", "no-such-channel", exists=False)
    note_list.append(NoteRes("missing", MISSING_ID, missing, exists=False))
    reply_list.append(ReplyRes("missing", MISSING_ID, note_list[-1], exists=False))
    fx = Fx(chans, note_list, reply_list, secrets, users, pending.id, link.rsplit("/", 1)[1],
            users["eu_member"].organisation_id, missing, {name: t.id for name, (t, _) in issued.items()},
            {name: text for name, (_, text) in issued.items()})
    for row in db.scalars(select(UserSession)):
        fx.user_sessions[next(name for name, u in users.items() if u.id == row.user_id)] = row.id
    # Everyone has an unread reply notification in the joint channel; the outsider also one into the
    # private channel (from before they could no longer see it), which must stay hidden from them.
    mine = [(name, fx.note("question@joint")) for name in users] + [("outsider", fx.note("question@private"))]
    for name, note in mine:
        row = Notification(user_id=users[name].id, kind="reply", note_id=note.id, reply_id=note.reply_id,
                           actor_id=users["jp_member" if name == "eu_member" else "eu_member"].id)
        db.add(row)
        db.flush()
        fx.notifications.append(NotificationRes(f"{name}@{note.channel.key}", row.id, name, note))
    db.commit()
    return fx


def may_know(actor: Actor, secret: Secret, path: str) -> bool:
    if actor.anonymous:
        return False
    channel = Chan(secret.channel, "")
    if secret.kind == "name" and actor.is_admin and path.startswith("/admin/"):
        return True  # admins administer every channel: its name, not its notes
    if not actor.sees(channel):
        return False
    if secret.kind == "deleted-note":
        return actor.is_admin
    return secret.kind in ("live", "name")


# ---------------------------------------------------------------------------------------------------
# Expected outcomes.


@dataclass(frozen=True)
class Outcome:
    status: int
    changes: bool | None = None  # None: the default (an allowed POST changes state; nothing else does)
    to_login: bool | None = None  # for redirects; None: the default (anonymous → /login)


def same(status: int) -> Outcome:
    """Allowed, but nothing changes (a form that the service refuses with a flashed message)."""
    return Outcome(status, changes=False)


def signed_in(expect):
    """Anonymous requests are redirected to the sign-in page before anything else."""
    def wrapped(actor: Actor, res: Res, method: str):
        return 302 if actor.anonymous else expect(actor, res.obj, method)
    return wrapped


def admins_only(expect):
    def wrapped(actor: Actor, res: Res, method: str):
        if actor.anonymous:
            return 302
        if not actor.is_admin:
            return 404
        return expect(actor, res.obj, method)
    return wrapped


def hidden_channel(actor: Actor, chan: Chan) -> bool:
    return not chan.exists or not actor.sees(chan)


def hidden_note(actor: Actor, note: NoteRes, *, admins_see_deleted: bool = False) -> bool:
    if not note.exists or not actor.sees(note.channel):
        return True
    return note.deleted and not (admins_see_deleted and actor.is_admin)


def hidden_reply(actor: Actor, reply: ReplyRes) -> bool:
    return not reply.exists or reply.deleted or hidden_note(actor, reply.note)


def refused_write(actor: Actor, chan: Chan, author: str) -> int | None:
    """auth.require_author_or_moderator: archived first, then author or moderator."""
    if chan.archived:
        return 403
    if actor.name != author and not actor.moderates(chan):
        return 403
    return None


def expect_note_write(actor, note, method):
    """Edit (GET form, POST save) and delete: the author or a moderator, in a writable channel."""
    if hidden_note(actor, note):
        return 404
    return refused_write(actor, note.channel, note.author) or (200 if method == "GET" else 302)


def expect_reply_write(actor, reply, method):
    if hidden_reply(actor, reply):
        return 404
    return refused_write(actor, reply.note.channel, reply.author) or (200 if method == "GET" else 302)


def expect_restore(actor, note, method):
    if hidden_note(actor, note, admins_see_deleted=True):
        return 404
    # Restoring is for admins; restoring a live note is allowed and only leaves an audit record.
    return 302 if actor.is_admin else 403


def expect_status(actor, note, method):
    if hidden_note(actor, note):
        return 404
    if note.kind != "case":
        return same(302)  # "Only cases have a status", flashed
    return refused_write(actor, note.channel, note.author) or 302


def expect_accept(actor, note, method):
    if hidden_note(actor, note):
        return 404
    if note.kind != "question":
        return same(302)  # "Only questions have answers", flashed
    return refused_write(actor, note.channel, note.author) or 302


def expect_decline(actor, note, method):
    if hidden_note(actor, note):
        return 404
    if note.kind != "question":
        return same(302)
    if note.channel.archived:
        return 403
    if actor.side != note.addressed_side() and not actor.moderates(note.channel):
        return 403
    return 302


def expect_reopen(actor, note, method):
    if hidden_note(actor, note):
        return 404
    if note.kind != "question":
        return same(302)
    return refused_write(actor, note.channel, note.author) or 302


def expect_reply(actor, note, method):
    if hidden_note(actor, note):
        return 404
    return 403 if note.channel.archived else 302


def expect_subthread(actor, pair, method):
    note, reply = pair
    if hidden_note(actor, note) or reply.note.id != note.id:
        return 404
    return 200  # a deleted root is shown as "This reply was deleted."


def expect_restore_reply(actor, reply, method):
    if not reply.exists or not actor.is_admin or hidden_note(actor, reply.note):
        return 404
    return 302 if reply.deleted else same(302)


def expect_compose(actor, target, method):
    chan, kind = target
    if hidden_channel(actor, chan) or kind not in ("update", "case", "question"):
        return 404
    if chan.archived:
        return 403
    return 200 if method == "GET" else 302


def expect_login(actor, res, method):
    if not actor.anonymous:
        return same(302)  # already signed in: sent on to the dashboard
    return 200 if method == "GET" else Outcome(401, changes=True)  # the failed attempt is recorded


def expect_invitation(actor, res, method):
    if res.obj == "bogus":
        return 400
    # A valid link works whoever holds it (signing out a signed-in official first).
    return 200 if method == "GET" else Outcome(302, changes=True, to_login=False)


def expect_two_factor_setup(actor, res, method):
    if method == "GET":
        return 200
    # Moderators and admins (and the outsider, built enrolled) see their status; others get a wrong code.
    return same(200) if ROLE[actor.name] != "member" or actor.name == "outsider" else 400


def sessions_of(fx: Fx) -> list[Res]:
    return [*(Res(f"session:{name}", {"session_id": session_id}, name)
              for name, session_id in fx.user_sessions.items()),
            Res("session:missing", {"session_id": MISSING_ID}, None)]


def expect_export_channel(actor, chan, method):
    """Channel moderators, site moderators and admins export the channels they can see."""
    if hidden_channel(actor, chan):
        return 404
    return 200 if actor.moderates(chan) else 403


def expect_export_case(actor, note, method):
    if hidden_note(actor, note) or note.kind != "case":
        return 404
    return 200 if actor.moderates(note.channel) else 403


def channels_of(fx: Fx) -> list[Res]:
    return [Res(c.label, {"slug": c.slug}, c) for c in [*fx.channels.values(), fx.missing_channel]]


def notes_of(fx: Fx) -> list[Res]:
    return [Res(n.label, {"note_id": n.id}, n) for n in fx.notes]


def replies_of(fx: Fx) -> list[Res]:
    return [Res(r.label, {"reply_id": r.id}, r) for r in fx.replies]


def nothing(fx: Fx) -> list[Res]:
    return [Res("-", {})]


def subthreads_of(fx: Fx) -> list[Res]:
    pairs = [(r.note, r) for r in fx.replies if r.exists]
    # A visible note with a reply from elsewhere (a hidden or another channel's) must not show that reply.
    pairs += [(fx.note("question@joint"), fx.reply("answer@private")),
              (fx.note("question@joint"), fx.reply("answer@jp")),
              (fx.note("question@eu"), fx.reply("answer@joint")),
              (fx.note("question@private"), fx.reply("answer@eu"))]
    pairs.append((fx.note("question@joint"), fx.reply("missing")))
    return [Res(f"{n.label}+{r.label}", {"note_id": n.id, "reply_id": r.id}, (n, r)) for n, r in pairs]


def compose_targets(fx: Fx) -> list[Res]:
    return [Res(f"{c.label}/{kind}", {"slug": c.slug, "kind": kind}, (c, kind))
            for c in [*fx.channels.values(), fx.missing_channel] for kind in ("update", "bogus")]


def user_targets(fx: Fx) -> list[Res]:
    return [Res("user:outsider", {"user_id": fx.users["outsider"].id}, "outsider"),
            Res("user:pending", {"user_id": fx.pending_user_id}, "pending"),
            Res("user:missing", {"user_id": MISSING_ID}, "missing")]


def member_targets(fx: Fx) -> list[Res]:
    out = [Res(f"{c.label}+eu_member", {"slug": c.slug, "user_id": fx.users["eu_member"].id}, (c, True))
           for c in [*fx.channels.values(), fx.missing_channel]]
    out.append(Res("channel:private+missing-user", {"slug": fx.channels["private"].slug, "user_id": MISSING_ID},
                   (fx.channels["private"], False)))
    return out


def acts(fx: Fx) -> list[Res]:
    return [Res("act:dsa", {"slug": "dsa"}, True), Res("act:missing", {"slug": "no-such-act"}, False)]


def tokens(fx: Fx) -> list[Res]:
    return [Res("invitation:valid", {"token": fx.invitation_token}, "valid"),
            Res("invitation:bogus", {"token": "not-a-real-invitation"}, "bogus")]


BOGUS_TOKEN = "not-a-real-token"
PUBLIC = {"auth.login", "auth.invitation", "auth.switch_language", "api.openapi", "digests.digest_feed",
          "digests.channel_feed", "digests.topic_feed", "digests.unsubscribe"}


def bad_tokens(fx: Fx) -> list[Res]:
    return [Res("token:bogus", {"token": BOGUS_TOKEN})]


def bad_token_channels(fx: Fx) -> list[Res]:
    return [Res(f"token:bogus+{c.label}", {"token": BOGUS_TOKEN, "slug": c.slug}, c)
            for c in [*fx.channels.values(), fx.missing_channel]]


def subscriptions_of(fx: Fx) -> list[Res]:
    """eu_member's default subscription (every official starts with one), and a missing one."""
    from portal.models import Subscription

    with engine().connect() as connection:
        own = connection.scalar(select(Subscription.id).where(Subscription.user_id == fx.users["eu_member"].id))
    return [Res("subscription:eu_member", {"subscription_id": own}, "eu_member"),
            Res("subscription:missing", {"subscription_id": MISSING_ID}, None)]


def expect_own_subscription(actor, owner, method):
    return 302 if actor.name == owner else 404


def expect_translate(actor, note, method):
    """The author, a colleague of the author's organisation (in this world one organisation per side),
    or a moderator of the channel; not in an archive."""
    if hidden_note(actor, note):
        return 404
    if note.channel.archived:
        return 403
    if actor.name != note.author and actor.side != SIDE[note.author] and not actor.moderates(note.channel):
        return 403
    return 200 if method == "GET" else 302


def expect_request_acknowledgement(actor, note, method):
    if hidden_note(actor, note):
        return 404
    refused = refused_write(actor, note.channel, note.author)
    if refused:
        return refused
    if CHANNELS[note.channel.key] in ("eu", "jp"):
        return same(302)  # nobody on the other side can see the channel: flashed
    return 302


def notifications_of(fx: Fx) -> list[Res]:
    return [Res(n.label, {"notification_id": n.id}, n) for n in fx.notifications] + [
        Res("notification:missing", {"notification_id": MISSING_ID}, None)]


def opens_notification(status: int):
    """Only its owner, and only while they may still see its note; opening marks it read."""
    def expect(actor, notification, method):
        if notification is None or notification.owner != actor.name or not actor.sees(notification.note.channel):
            return 404
        return status
    return expect


NEW_PASSWORD = "another long test passphrase 7"
NOTE_FORM = {"title": "Edited by the matrix", "body": "Edited body", "lang": "en", "marking": "limited",
             "topics": "dsa", "articles": "DSA Art. 16", "answer_by": "2031-01-01", "case_status": "open"}


@dataclass(frozen=True)
class Route:
    resources: Callable[[Fx], list[Res]]
    expect: Callable[[Actor, Res, str], int | Outcome]
    methods: tuple[str, ...] = ("GET",)
    form: Callable[[Fx, Res], dict] = lambda fx, res: {}
    public: bool = False  # reachable without signing in
    api: bool = False  # a JSON API route: sent with the actor's token (not the cookie), a JSON body, If-Match


def get(resources, expect, **kw) -> Route:
    return Route(resources, expect, ("GET",), **kw)


def post(resources, expect, form=lambda fx, res: {}, **kw) -> Route:
    return Route(resources, expect, ("POST",), form, **kw)


page = signed_in(lambda actor, obj, method: 200)  # a page every signed-in official may open


# The JSON API: the same rules, with a token instead of a session; anonymous requests get 401, not /login.
def with_token(expect):
    def wrapped(actor: Actor, res: Res, method: str):
        return 401 if actor.anonymous else expect(actor, res.obj, method)
    return wrapped


def api(resources, expect, method: str = "GET", body=lambda fx, res: {}, **kw) -> Route:
    return Route(resources, with_token(expect), (method,), body, api=True, **kw)


def changed(status: int) -> Outcome:
    return Outcome(status, changes=True)


def expect_api_note_write(actor, note, method):
    """PATCH and DELETE: the author or a moderator, in a writable channel; deleted notes are gone (404)."""
    if hidden_note(actor, note):
        return 404
    return refused_write(actor, note.channel, note.author) or changed(200 if method == "PATCH" else 204)


def expect_api_reply_write(actor, reply, method):
    if hidden_reply(actor, reply):
        return 404
    return refused_write(actor, reply.note.channel, reply.author) or changed(200)


def expect_api_post_note(actor, chan, method):
    if hidden_channel(actor, chan):
        return 404
    return 403 if chan.archived else changed(201)


def expect_api_reply(actor, note, method):
    if hidden_note(actor, note):
        return 404
    return 403 if note.channel.archived else changed(201)


API_NOTE = {"kind": "update", "title": "Posted by the matrix", "body": "Matrix body", "lang": "en"}


ROUTES: dict[str, Route] = {
    # Sign-in and accounts.
    "auth.login": Route(nothing, expect_login, ("GET", "POST"),
                        lambda fx, r: {"email": "nobody@example.org", "password": "wrong password"}, public=True),
    "auth.logout": post(nothing, lambda a, r, m: Outcome(302, changes=not a.anonymous, to_login=True)),
    "auth.invitation": Route(tokens, expect_invitation, ("GET", "POST"),
                             lambda fx, r: {"password": NEW_PASSWORD, "confirm": NEW_PASSWORD}, public=True),
    "auth.change_password": Route(
        nothing, signed_in(lambda a, o, m: 200 if m == "GET" else 302), ("GET", "POST"),
        lambda fx, r: {"current": PASSWORD, "password": NEW_PASSWORD, "confirm": NEW_PASSWORD}),
    "auth.profile": Route(
        nothing, signed_in(lambda a, o, m: 200 if m == "GET" else 302), ("GET", "POST"),
        lambda fx, r: {"lang": "en", "time_zone": "Asia/Tokyo"}),
    # Anyone may switch the language, before sign-in too; only an account's choice is stored
    # (the Japanese officials of the world already use Japanese).
    "auth.switch_language": post(
        nothing, lambda a, r, m: Outcome(302, changes=not a.anonymous and a.side != "jp", to_login=False),
        form=lambda fx, r: {"lang": "ja", "next": "/"}, public=True),
    "notes.preview": post(nothing, signed_in(lambda a, o, m: same(200)), form=lambda fx, r: {"body": "**x**"}),
    # The second step of signing in: only for a browser between its password and its code.
    "twofactor.code": Route(nothing, signed_in(lambda a, o, m: same(302)), ("GET", "POST"),
                            lambda fx, r: {"code": "123456"}),
    # The QR code of an enrolment under way; these sessions have none (tested in test_twofactor.py).
    "twofactor.qr": get(nothing, signed_in(lambda a, o, m: 404)),
    "twofactor.setup": Route(nothing, signed_in(expect_two_factor_setup), ("GET", "POST"),
                             lambda fx, r: {"code": "000000"}),
    "sessions.index": get(nothing, page),
    "sessions.end": post(sessions_of, signed_in(lambda a, owner, m: 302 if owner == a.name else 404)),
    "sessions.end_others": post(nothing, signed_in(lambda a, o, m: 302)),
    # Reading.
    "main.dashboard": get(nothing, page),
    "main.regulations": get(nothing, page),
    # Which results each reader gets is tested per visibility in test_search.py.
    "search.index": get(nothing, page),
    "search.help_page": get(nothing, page),
    "main.act": get(acts, signed_in(lambda a, found, m: 200 if found else 404)),
    "channels.index": get(nothing, page),
    "channels.show": get(channels_of, signed_in(lambda a, c, m: 404 if hidden_channel(a, c) else 200)),
    "channels.feed": get(channels_of, signed_in(lambda a, c, m: 404 if hidden_channel(a, c) else 200)),
    "channels.compose": Route(compose_targets, signed_in(expect_compose), ("GET", "POST"),
                              lambda fx, r: {"title": "Posted by the matrix", "body": "Matrix body", "lang": "en",
                                             "marking": "limited"}),
    "notes.show": get(notes_of, signed_in(
        lambda a, n, m: 404 if hidden_note(a, n, admins_see_deleted=True) else 200)),
    "notes.history": get(notes_of, signed_in(lambda a, n, m: 404 if hidden_note(a, n) else 200)),
    "notes.subthread": get(subthreads_of, signed_in(expect_subthread)),
    "notes.reply_permalink": get(replies_of, signed_in(lambda a, r, m: 404 if hidden_reply(a, r) else 302)),
    "notes.reply_history": get(replies_of, signed_in(lambda a, r, m: 404 if hidden_reply(a, r) else 200)),
    # Writing notes.
    "notes.edit": Route(notes_of, signed_in(expect_note_write), ("GET", "POST"), lambda fx, r: NOTE_FORM),
    "notes.delete": post(notes_of, signed_in(expect_note_write)),
    "notes.restore": post(notes_of, signed_in(expect_restore)),
    "notes.status": post(notes_of, signed_in(expect_status), lambda fx, r: {"case_status": "investigating"}),
    "notes.accept": post(notes_of, signed_in(expect_accept), lambda fx, r: {"reply_id": r.obj.reply_id or ""}),
    "notes.decline": post(notes_of, signed_in(expect_decline), lambda fx, r: {"grounds": "Outside our remit."}),
    "notes.reopen": post(notes_of, signed_in(expect_reopen)),
    "notes.reply": post(notes_of, signed_in(expect_reply), lambda fx, r: {"body": "A reply from the matrix"}),
    # Writing replies.
    "notes.edit_reply": Route(replies_of, signed_in(expect_reply_write), ("GET", "POST"),
                              lambda fx, r: {"body": "Reply edited by the matrix"}),
    "notes.delete_reply": post(replies_of, signed_in(expect_reply_write)),
    "notes.restore_reply": post(replies_of, signed_in(expect_restore_reply)),
    # Translations, acknowledgement and notifications (rules in detail in their own test files).
    "translations.edit": Route(notes_of, signed_in(expect_translate), ("GET", "POST"),
                               lambda fx, r: {"title": "Translated by the matrix", "body": "Translated body",
                                              "status": "courtesy"}),
    # The world's notes have no translation: the history sends readers on to the note's own history.
    "translations.history": get(notes_of, signed_in(lambda a, n, m: 404 if hidden_note(a, n) else 302)),
    "acknowledgements.request_acknowledgement": post(notes_of, signed_in(expect_request_acknowledgement)),
    # No note of the world asks for acknowledgement: refused with a flashed message.
    "acknowledgements.acknowledge": post(notes_of, signed_in(lambda a, n, m: 404 if hidden_note(a, n) else same(302))),
    "notifications.index": get(nothing, page),
    "notifications.open": post(notifications_of, signed_in(opens_notification(302))),
    "notifications.mark_all_read": post(nothing, signed_in(lambda a, r, m: 302)),
    # Administration: 404 to everyone but admins, of either side.
    "admin.users": Route(nothing, admins_only(lambda a, o, m: 200), ("GET", "POST"),
                         lambda fx, r: {"email": "new.official@ec.example.eu", "name": "New Official",
                                        "organisation_id": fx.eu_org_id, "role": "member"}),
    "admin.update_user": post(user_targets, admins_only(lambda a, who, m: 404 if who == "missing" else 302),
                              lambda fx, r: {"role": "moderator"}),
    "admin.reinvite": post(user_targets, admins_only(
        lambda a, who, m: {"missing": 404, "pending": 302}.get(who, same(302)))),  # set a password: flashed
    "admin.organisations": Route(nothing, admins_only(lambda a, o, m: 200), ("GET", "POST"),
                                 lambda fx, r: {"slug": "new-org", "name": "New Organisation", "side": "jp"}),
    "admin.channel_list": Route(nothing, admins_only(lambda a, o, m: 200 if m == "GET" else 302), ("GET", "POST"),
                                lambda fx, r: {"slug": "new-channel", "name_en": "New channel",
                                               "visibility": "joint"}),
    "admin.channel": Route(channels_of, admins_only(
        lambda a, c, m: 404 if not c.exists else (200 if m == "GET" else 302)), ("GET", "POST"),
        lambda fx, r: {"name_en": "Renamed channel", "visibility": CHANNELS.get(r.obj.key, "joint")}),
    "admin.add_member": post(channels_of, admins_only(lambda a, c, m: 302 if c.exists else 404),
                             lambda fx, r: {"email": (fx.users["jp_admin"] if r.obj.key == "jp"
                                                      else fx.users["outsider"]).email}),
    "admin.remove_member": post(member_targets, admins_only(
        lambda a, t, m: 404 if not (t[0].exists and t[1]) else (302 if t[0].key == "private" else same(302)))),
    "admin.archive": post(channels_of, admins_only(lambda a, c, m: 302 if c.exists else 404),
                          lambda fx, r: {"archive": "1"}),
    "admin.deleted": get(nothing, admins_only(lambda a, o, m: 200)),
    # Personal API tokens: each official's own (revoking someone else's, or a missing one, is 404).
    "tokens.index": Route(nothing, signed_in(lambda a, o, m: 200), ("GET", "POST"),
                          lambda fx, r: {"name": "Matrix", "scope": "read", "days": "30"}),
    "tokens.revoke": post(lambda fx: [Res(f"token:{name}", {"token_id": token_id}, name)
                                      for name, token_id in [*fx.tokens.items(), ("missing", MISSING_ID)]],
                          signed_in(lambda a, owner, m: 302 if a.name == owner else 404)),
    # The JSON API, with the actor's token.
    "api.openapi": Route(nothing, lambda a, r, m: 200, public=True, api=True),  # the description is public
    "api.account.me": api(nothing, lambda a, o, m: 200),
    "api.channels.index": api(nothing, lambda a, o, m: 200),
    "api.channels.show": api(channels_of, lambda a, c, m: 404 if hidden_channel(a, c) else 200),
    "api.notes.index": api(nothing, lambda a, o, m: 200),
    "api.notes.channel_index": api(channels_of, lambda a, c, m: 404 if hidden_channel(a, c) else 200),
    "api.notes.create": api(channels_of, expect_api_post_note, "POST", lambda fx, r: API_NOTE),
    "api.notes.show": api(notes_of, lambda a, n, m: 404 if hidden_note(a, n) else 200),
    "api.notes.edit": api(notes_of, expect_api_note_write, "PATCH", lambda fx, r: {"title": "Edited by the matrix"}),
    "api.notes.delete": api(notes_of, expect_api_note_write, "DELETE"),
    "api.notes.thread": api(notes_of, lambda a, n, m: 404 if hidden_note(a, n) else 200),
    "api.notes.reply": api(notes_of, expect_api_reply, "POST", lambda fx, r: {"body": "A reply from the matrix"}),
    "api.notes.show_reply": api(replies_of, lambda a, r, m: 404 if hidden_reply(a, r) else 200),
    "api.notes.edit_reply": api(replies_of, expect_api_reply_write, "PATCH",
                                lambda fx, r: {"body": "Reply edited by the matrix"}),
    # Without q: a bad request for everyone with a token (what each reader finds: tests/test_api.py).
    "api.search.index": api(nothing, lambda a, o, m: 400),
    # Subscriptions and notifications through the API (in detail: tests/test_api_subscriptions.py).
    "api.subscriptions.index": api(nothing, lambda a, o, m: 200),
    "api.subscriptions.create": api(nothing, lambda a, o, m: changed(201), "POST",
                                    lambda fx, r: {"channel": fx.channels["joint"].slug, "frequency": "daily"}),
    "api.subscriptions.delete": api(subscriptions_of, lambda a, owner, m: changed(204) if a.name == owner else 404,
                                    "DELETE"),
    "api.notifications.index": api(nothing, lambda a, o, m: 200),
    "api.notifications.read": api(notifications_of, opens_notification(changed(200)), "POST"),
    "api.notifications.read_all": api(nothing, lambda a, o, m: changed(200), "POST"),
    # Subscriptions and digests. What digests and token feeds contain, per visibility, is tested both ways
    # in test_digests.py: here a valid feed token would show its owner's notes to whoever holds the URL.
    "subscriptions.index": Route(nothing, signed_in(lambda a, o, m: 200 if m == "GET" else 302), ("GET", "POST"),
                                 lambda fx, r: {"target": "channel", "channel": fx.channels["joint"].slug,
                                                "frequency": "daily"}),
    "subscriptions.mute": post(subscriptions_of, signed_in(expect_own_subscription)),
    "subscriptions.delete": post(subscriptions_of, signed_in(expect_own_subscription)),
    "subscriptions.feed_token": post(nothing, signed_in(lambda a, o, m: 200)),
    "subscriptions.revoke_feed_token": post(nothing, signed_in(lambda a, o, m: same(302))),  # none issued yet
    "digests.show": get(nothing, page),
    "digests.mark_read": post(nothing, signed_in(lambda a, o, m: 302)),
    "digests.digest_feed": get(bad_tokens, lambda a, r, m: 404, public=True),
    "digests.channel_feed": get(bad_token_channels, lambda a, r, m: 404, public=True),
    "digests.topic_feed": get(lambda fx: [Res("token:bogus+topic:dsa", {"token": BOGUS_TOKEN, "slug": "dsa"})],
                              lambda a, r, m: 404, public=True),
    "digests.unsubscribe": Route(bad_tokens, lambda a, r, m: 400, ("GET", "POST"), public=True),
    "admin.reset_two_factor": post(user_targets, admins_only(
        lambda a, who, m: {"missing": 404, "pending": same(302)}.get(who, 302))),  # pending: nothing to reset
    "audit.index": get(nothing, admins_only(lambda a, o, m: 200)),
    "audit.export": post(nothing, admins_only(lambda a, o, m: 200), lambda fx, r: {"action": "user."}),  # audited
    # Exports (audited, so an allowed export changes the database).
    "export.channel": post(channels_of, signed_in(expect_export_channel), lambda fx, r: {"format": "json"}),
    "export.case": post(notes_of, signed_in(expect_export_case), lambda fx, r: {"format": "json"}),
}


# ---------------------------------------------------------------------------------------------------
# Snapshot and restore of the whole database, table by table (works on SQLite and PostgreSQL).

TABLES = Base.metadata.sorted_tables
# The regulation index and taxonomy, loaded from content/: no request writes them. They are compared once,
# at the end of each matrix, rather than after every request.
REFERENCE_TABLES = {"topics", "acts", "articles"}


def dump(connection, *, everything: bool = True) -> dict[str, dict[tuple, tuple]]:
    """Every row of every table, by primary key."""
    state = {}
    for table in TABLES:
        if not everything and table.name in REFERENCE_TABLES:
            continue
        key = [i for i, column in enumerate(table.columns) if column.primary_key]
        state[table.name] = {tuple(row[i] for i in key): tuple(row)
                             for row in connection.execute(select(table))}
    return state


def restore(connection, snapshot, current) -> None:
    """Put back what was removed or changed (parents first), then remove what was added (children first).
    Audit events cannot be removed (the database refuses): those a request appended join the snapshot."""
    if "audit_events" in current:
        snapshot["audit_events"] = current["audit_events"]
    for table in TABLES:
        if table.name not in current:
            continue
        names = [column.name for column in table.columns]
        key = [column for column in table.columns if column.primary_key]
        was, now = snapshot[table.name], current[table.name]
        missing = [dict(zip(names, row)) for pk, row in sorted(was.items()) if pk not in now]
        if missing:
            connection.execute(table.insert(), missing)
        for pk, row in was.items():
            if pk in now and now[pk] != row:
                connection.execute(table.update().where(and_(*(c == v for c, v in zip(key, pk))))
                                   .values(dict(zip(names, row))))
    for table in reversed(TABLES):
        if table.name not in current:
            continue
        key = [column for column in table.columns if column.primary_key]
        was, now = snapshot[table.name], current[table.name]
        for pk in sorted((pk for pk in now if pk not in was), reverse=True):
            connection.execute(table.delete().where(and_(*(c == v for c, v in zip(key, pk)))))


def commits_seen(watcher) -> object:
    """A value that moves when any other connection commits a change: SQLite's data_version, or the
    PostgreSQL server's WAL position. While it stands still nothing changed and no dump is needed."""
    if watcher.dialect.name == "sqlite":
        seen = watcher.exec_driver_sql("PRAGMA data_version").scalar()
    else:
        seen = watcher.exec_driver_sql("SELECT pg_current_wal_insert_lsn()").scalar()
    watcher.rollback()
    return seen


def changed_tables(snapshot, current) -> list[str]:
    return [name for name in current if current[name] != snapshot[name]]


# ---------------------------------------------------------------------------------------------------
# The tests.


def rules_under_test(app):
    return sorted((rule for rule in app.url_map.iter_rules() if rule.endpoint != "static"), key=lambda r: r.rule)


def methods_of(rule) -> set[str]:
    return set(rule.methods) - {"HEAD", "OPTIONS"}


def test_every_route_is_in_the_matrix(app):
    """A new route fails here until its expected status for every actor is written into ROUTES."""
    rules = rules_under_test(app)
    endpoints = {rule.endpoint for rule in rules}
    assert sorted(endpoints - set(ROUTES)) == [], "routes without an entry in ROUTES"
    assert sorted(set(ROUTES) - endpoints) == [], "entries in ROUTES for routes that no longer exist"
    for rule in rules:
        assert methods_of(rule) == set(ROUTES[rule.endpoint].methods), f"{rule.rule}: methods differ"
        assert ROUTES[rule.endpoint].public == (rule.endpoint in PUBLIC)
        assert ROUTES[rule.endpoint].api == rule.rule.startswith("/api/")
    # The one rule the matrix skips: static files are served to anyone.
    with app.test_client().get("/static/portal.css") as response:
        assert response.status_code == 200


class ActorClient:
    """Sends one request as one actor, from a fresh client carrying that actor's session cookie."""

    def __init__(self, app, cookie: str | None, token: str | None = None):
        self.app, self.cookie, self.token = app, cookie, token

    def open(self, path: str, method: str, data: dict | None = None):
        client = self.app.test_client()
        if self.cookie is not None:
            client.set_cookie("session", self.cookie)
        return client.open(path, method=method, data=data)

    def call(self, path: str, method: str, body: dict | None = None):
        """An API request with the actor's token only (and the cookie, which must not count);
        a change carries If-Match with the ETag the actor reads first, as a client would."""
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        if method in ("PATCH", "DELETE"):
            headers["If-Match"] = self.open_api(path, "GET", headers).headers.get("ETag", '"unread"')
        return self.open_api(path, method, headers, body)

    def open_api(self, path: str, method: str, headers: dict, body: dict | None = None):
        client = self.app.test_client()
        if self.cookie is not None:
            client.set_cookie("session", self.cookie)
        return client.open(path, method=method, headers=headers, json=body if method in ("POST", "PATCH") else None)


def sign_in(app, fx: Fx, actor: Actor) -> ActorClient:
    if actor.anonymous:
        return ActorClient(app, None)
    client = app.test_client()
    login(client, fx.users[actor.name])
    return ActorClient(app, client.get_cookie("session").value, fx.token_texts[actor.name])


def leaks(actor: Actor, fx: Fx, path: str, body: str) -> list[str]:
    return [s.text for s in fx.secrets if s.text in body and not may_know(actor, s, path)]


@pytest.mark.parametrize("actor_name", ACTORS)
def test_authorization_matrix(app, db, world, actor_name):
    actor = Actor(actor_name)
    # Every request is compared with one snapshot: a last-seen refresh would look like a change.
    app.config["SESSION_TOUCH_SECONDS"] = 24 * 3600
    fx = build(db, world)
    db.close()
    session = sign_in(app, fx, actor)
    adapter = app.url_map.bind("portal.test")
    with engine().connect() as connection:
        snapshot = dump(connection)
    watcher = engine().connect()
    seen = commits_seen(watcher)
    failures: list[str] = []
    not_found_page: str | None = None
    not_found_problem: str | None = None
    requests = 0

    for rule in rules_under_test(app):
        route = ROUTES[rule.endpoint]
        for res in route.resources(fx):
            assert set(res.values) == set(rule.arguments), f"{rule.endpoint}: {res.label} fills the wrong arguments"
            path = adapter.build(rule.endpoint, res.values)
            for method in route.methods:
                matched, _ = adapter.match(path, method=method, return_rule=True)
                assert matched is rule, f"{path} reaches {matched.rule}, not {rule.rule}"
                expected = route.expect(actor, res, method)
                if not isinstance(expected, Outcome):
                    expected = Outcome(expected)
                changes = expected.changes
                if changes is None:
                    changes = method == "POST" and expected.status in (200, 302) and not actor.anonymous
                to_login = expected.to_login
                if to_login is None:
                    to_login = actor.anonymous and not route.public

                if route.api:
                    response = session.call(path, method, route.form(fx, res))
                else:
                    response = session.open(path, method, route.form(fx, res) if method == "POST" else None)
                requests += 1
                body = response.get_data(as_text=True)
                where = f"{actor.name} {method} {path} [{rule.endpoint} {res.label}]"
                if response.status_code != expected.status:
                    failures.append(f"{where}: expected {expected.status}, got {response.status_code}")
                if response.status_code == 302:
                    goes_to_login = urlsplit(response.location).path == "/login"
                    if goes_to_login != to_login:
                        failures.append(f"{where}: redirected to {response.location}")
                if response.status_code == 404 and route.api:
                    not_found_problem = not_found_problem or body
                    if body != not_found_problem:
                        failures.append(f"{where}: this 404 problem differs from other 404 problems")
                elif response.status_code == 404:
                    page_text = CSRF_TOKEN.sub("", body)  # a fresh client gets a fresh token
                    not_found_page = not_found_page or page_text
                    if page_text != not_found_page:
                        failures.append(f"{where}: this 404 page differs from other 404 pages")
                if leaked := leaks(actor, fx, path, body):
                    failures.append(f"{where}: shows {leaked}")

                if commits_seen(watcher) == seen:
                    touched = made = []
                else:
                    with engine().begin() as connection:
                        current = dump(connection, everything=False)
                        touched = made = changed_tables(snapshot, current)
                        if touched:
                            restore(connection, snapshot, current)
                    seen = commits_seen(watcher)
                if route.api and session.token and rule.endpoint != "api.openapi":
                    if "audit_events" not in touched:
                        failures.append(f"{where}: the use of the token was not audited")
                    # Each use is audited and stamps the token: bookkeeping, not a change the request made.
                    made = [name for name in touched if name not in ("audit_events", "api_tokens")]
                if bool(made) != changes:
                    failures.append(f"{where}: expected {'a' if changes else 'no'} change, "
                                    f"changed {made or 'nothing'}")
    watcher.close()
    with engine().connect() as connection:
        assert changed_tables(snapshot, dump(connection)) == []
    assert requests > 300
    assert not failures, f"{len(failures)} of {requests} requests went wrong:\n" + "\n".join(failures)


def test_lists_show_exactly_the_visible_notes(app, db, world):
    """Lists show each note the official may see, and no note from a channel they may not see."""
    fx = build(db, world)
    db.close()
    every_title = [n.title for n in fx.notes if n.exists]
    failures = []
    for name in ACTORS[1:]:
        actor = Actor(name)
        client = sign_in(app, fx, actor)
        shown = [n for n in fx.notes if n.exists and not n.deleted and actor.sees(n.channel)]
        pages = {"/": shown, "/regulations/dsa": shown, "/channels": []}
        dashboard = client.open("/", "GET").get_data(as_text=True)
        for n in fx.notes:
            if n.exists and n.kind == "case":
                label = f"{'Deleted case milestone' if n.deleted else 'Milestone due'} in {n.channel.key}"
                if (label in dashboard) != (n in shown):
                    failures.append(f"{name} /: {'shows' if label in dashboard else 'omits'} {label!r}")
        for key, chan in fx.channels.items():
            if actor.sees(chan):
                own = [n for n in shown if n.channel.key == key]
                pages[f"/channels/{chan.slug}"] = pages[f"/channels/{chan.slug}/feed.atom"] = own
        if actor.is_admin:
            pages["/admin/deleted"] = [n for n in fx.notes if n.deleted and actor.sees(n.channel)]
        for path, expected in pages.items():
            response = client.open(path, "GET")
            body = response.get_data(as_text=True)
            if response.status_code != 200:
                failures.append(f"{name} {path}: {response.status_code}")
                continue
            expected_titles = {n.title for n in expected}
            for title in every_title:
                if (title in body) != (title in expected_titles):
                    failures.append(f"{name} {path}: {'shows' if title in body else 'omits'} {title!r}")
        body = client.open("/channels", "GET").get_data(as_text=True)
        for key, chan in fx.channels.items():
            listed = f'href="/channels/{chan.slug}"' in body
            if listed != actor.sees(chan):
                failures.append(f"{name} /channels: {'lists' if listed else 'omits'} the {key} channel")
    assert not failures, "\n".join(failures)


def test_api_lists_show_exactly_the_visible_notes(app, db, world):
    """The API's lists, with each official's token: every visible live note, and no other."""
    fx = build(db, world)
    db.close()
    failures = []
    for name in ACTORS[1:]:
        actor = Actor(name)
        client = sign_in(app, fx, actor)
        shown = [n for n in fx.notes if n.exists and not n.deleted and actor.sees(n.channel)]
        lists = {"/api/v1/notes?limit=100": shown}
        for key, chan in fx.channels.items():
            if actor.sees(chan):
                lists[f"/api/v1/channels/{chan.slug}/notes?limit=100"] = [n for n in shown if n.channel.key == key]
        for path, expected in lists.items():
            response = client.call(path, "GET")
            got = sorted(note["id"] for note in response.get_json()["items"])
            if got != sorted(n.id for n in expected):
                failures.append(f"{name} {path}: {got}, expected {sorted(n.id for n in expected)}")
        listed = {channel["slug"] for channel in client.call("/api/v1/channels", "GET").get_json()["items"]}
        if listed != {chan.slug for chan in fx.channels.values() if actor.sees(chan)}:
            failures.append(f"{name} /api/v1/channels: {sorted(listed)}")
    assert not failures, "\n".join(failures)
