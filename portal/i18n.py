"""Interface language and time zone: the user's choice, else the browser's Accept-Language.

Catalogues live in `portal/translations/` (`make messages` extracts and updates them; `make install`
compiles them). Times are stored in UTC and shown in the reader's zone.
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime, time, timezone
from functools import cache
from weakref import WeakKeyDictionary
from zoneinfo import ZoneInfo, available_timezones

from flask import Flask, g, has_request_context, request, session
from flask_babel import Babel, force_locale, get_locale, get_translations
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from jinja2 import pass_context
from markupsafe import Markup, escape

from portal.errors import is_api_request

LANGUAGES = ("en", "ja")
SIDE_TIME_ZONES = {"eu": "Europe/Brussels", "jp": "Asia/Tokyo"}
# Offered first in the profile form: where the portal's officials work.
COMMON_TIME_ZONES = ("Europe/Brussels", "Asia/Tokyo", "Europe/Dublin", "Europe/Lisbon", "Europe/London",
                     "Europe/Helsinki", "Europe/Athens", "UTC")
DATETIME_FORMATS = {"en": "%Y-%m-%d %H:%M", "ja": "%Y年%-m月%-d日 %H:%M"}
DATE_FORMATS = {"en": "%Y-%m-%d", "ja": "%Y年%-m月%-d日"}


@cache
def time_zones() -> frozenset[str]:
    """Every IANA zone name this machine knows."""
    return frozenset(available_timezones())


def select_locale() -> str:
    if not has_request_context():
        return "en"  # the CLI, whose messages go to an administrator's terminal
    if is_api_request():
        return "en"  # problem details are for a script's author, whatever its Accept-Language says
    if current_user and current_user.is_authenticated:
        return current_user.lang
    chosen = session.get("lang")
    if chosen in LANGUAGES:
        return chosen
    return request.accept_languages.best_match(LANGUAGES) or "en"


def zone_of(user) -> str:
    """The user's own time zone, else the usual zone of their side."""
    return user.time_zone or SIDE_TIME_ZONES[user.side]


def time_zone_name() -> str:
    if has_request_context() and current_user and current_user.is_authenticated:
        return zone_of(current_user)
    return "UTC"


def ui_lang() -> str:
    return str(get_locale() or "en")


def _zone() -> ZoneInfo:
    # Once per request: a 500-reply thread formats 500 timestamps.
    zone = g.get("_zone")
    if zone is None:
        zone = g._zone = ZoneInfo(time_zone_name())
    return zone


def today() -> date:
    """The date on the reader's calendar: a Tokyo official's morning is still yesterday in UTC."""
    return datetime.now(_zone()).date()


def today_for(user) -> date:
    """The date on this user's calendar when they are not the one signed in (an API token's owner)."""
    return datetime.now(ZoneInfo(zone_of(user))).date()


def local(moment: datetime) -> datetime:
    """A stored (naive UTC) datetime in the reader's zone."""
    return moment.replace(tzinfo=timezone.utc).astimezone(_zone())


def _datetime_format() -> str:
    # Kept with the locale it was made for: an e-mail rendered inside a request (force_locale) must
    # not take the page's format, nor the page the e-mail's. Comparing the locale is cheap.
    locale = get_locale()
    cached = g.get("_datetime_format")
    if cached is None or (cached[0] is not locale and cached[0] != locale):
        cached = g._datetime_format = (locale, DATETIME_FORMATS[str(locale or "en")])
    return cached[1]


def when(moment: datetime | None) -> Markup:
    """A `<time>` element: machine-readable UTC, shown in the reader's zone and language."""
    if moment is None:
        return Markup("")
    shown = local(moment)
    # Built as one string: a 500-reply thread calls this 500 times. Only the zone's name is not
    # made of digits and our own format, so only it is escaped.
    return Markup(f'<time datetime="{moment.isoformat(timespec="seconds")}Z">'
                  f'{shown.strftime(_datetime_format())} {escape(shown.tzname())}</time>')


def moment(value: datetime | None) -> str:
    """A stored datetime as plain text in the reader's zone and language: e-mails, plain-text parts."""
    if value is None:
        return ""
    shown = local(value)
    return f"{shown.strftime(_datetime_format())} {shown.tzname()}"


def day(value: date | datetime | None) -> str:
    """A date in the reader's language; a datetime is first moved to the reader's zone."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        value = local(value)
    return value.strftime(DATE_FORMATS[ui_lang()])


def deadline(due: date, side: str) -> list[tuple[str, datetime]]:
    """A date deadline ends with that day in the asking side's zone; when that is on both sides.

    Officials in Brussels and Tokyo are 7–8 hours apart, so "by 1 December" set in Brussels ends
    on the morning of 2 December in Tokyo. The asking side comes first.
    """
    end = datetime.combine(due, time(23, 59), ZoneInfo(SIDE_TIME_ZONES[side]))
    sides = [side] + [other for other in SIDE_TIME_ZONES if other != side]
    return [(other, end.astimezone(ZoneInfo(SIDE_TIME_ZONES[other]))) for other in sides]


@contextmanager
def as_reader(user) -> Iterator[None]:
    """Render for this user, not the one signed in (an e-mail, a token feed): their language and
    time zone, in a request or in the CLI alike."""
    saved = g.get("_zone")
    g._zone = ZoneInfo(zone_of(user))
    try:
        with force_locale(user.lang):
            yield
    finally:
        if saved is None:
            g.pop("_zone", None)
        else:
            g._zone = saved


# What readers see for stored values (kinds, states, markings, visibilities, roles); the stored
# values themselves never change with the language.
LABELS = {
    "update": _l("update"), "case": _l("case"), "question": _l("question"),
    "open": _l("open"), "investigating": _l("investigating"),
    "preliminary_findings": _l("preliminary findings"), "decision_adopted": _l("decision adopted"),
    "closed": _l("closed"), "answered": _l("answered"), "declined": _l("declined"), "overdue": _l("overdue"),
    "public": _l("public"), "limited": _l("limited"), "sensitive": _l("sensitive"),
    "joint": _l("joint"), "eu": _l("EU only"), "jp": _l("Japan only"), "private": _l("private"),
    "member": _l("member"), "moderator": _l("moderator"), "admin": _l("admin"),
    "immediate": _l("immediate"), "daily": _l("daily"), "weekly": _l("weekly"), "in-app": _l("in the portal only"),
    "read": _l("read"), "write": _l("read and write"),
}


def label(value: str | None) -> str:
    """The reader's word for a stored value such as a kind, a case status or a visibility."""
    return str(LABELS.get(value, value or ""))


# Per catalogue, what each message without arguments is in an HTML page: the same Markup every time,
# so it is made once rather than escaped and %-formatted on every page (most of a page's messages).
_PLAIN_MESSAGES: WeakKeyDictionary = WeakKeyDictionary()


def template_gettext() -> dict:
    """`_`, gettext, ngettext and pgettext for the templates of one render, bound to its catalogue.

    Flask-Babel's own look the locale and catalogue up again on each call, through several context
    lookups: a thread page makes about 40 such calls, and they were a twelfth of its time. These
    behave as Jinja's "newstyle" gettext does (escaped in HTML, always %-formatted with the keyword
    arguments). Bound when a template is rendered, so force_locale (an e-mail) gets its own language.
    """
    translations = get_translations()
    plain = _PLAIN_MESSAGES.get(translations)
    if plain is None:
        plain = _PLAIN_MESSAGES[translations] = {}

    @pass_context
    def gettext(context, string: str, **variables):
        if not variables and context.eval_ctx.autoescape:
            text = plain.get(string)
            if text is None:
                text = Markup(translations.ugettext(string)) % variables
                if len(plain) < 10_000:  # messages are the templates' literals; never let it grow unbounded
                    plain[string] = text
            return text
        return _formatted(context, translations.ugettext(string), variables)

    @pass_context
    def ngettext(context, singular: str, plural: str, num: int, **variables):
        variables.setdefault("num", num)
        return _formatted(context, translations.ungettext(singular, plural, num), variables)

    @pass_context
    def pgettext(context, message_context: str, string: str, **variables):
        variables.setdefault("context", message_context)
        return _formatted(context, translations.upgettext(message_context, string), variables)

    return {"_": gettext, "gettext": gettext, "ngettext": ngettext, "pgettext": pgettext}


def _formatted(context, text: str, variables: dict):
    # Jinja's newstyle gettext: Markup in an HTML template, so the arguments are escaped into it.
    return (Markup(text) if context.eval_ctx.autoescape else text) % variables


def init_app(app: Flask) -> None:
    Babel(app, locale_selector=select_locale, timezone_selector=time_zone_name)
    app.jinja_env.filters.update(when=when, moment=moment, day=day, label=label)
    app.jinja_env.globals.update(deadline=deadline, DATETIME_FORMATS=DATETIME_FORMATS)
