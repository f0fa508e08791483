"""The portal in a real browser: Debian's Chromium driven by Playwright, against the real server.

The server is a separate process started the way `make run` starts it (`flask init`, `flask demo`,
`flask run`) on its own instance folder, so these tests see what an official sees: real cookies,
CSRF tokens, redirects, the Content-Security-Policy enforced by the browser.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from portal.services.demo import DEMO_PASSWORD
from tests.conftest import postgres_maintenance_url, postgres_test_database, recreate_database
from tests.smtp import free_port

CHROMIUM = Path(os.environ.get("PORTAL_TEST_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
# An EU member of the joint channels and a Japanese member: neither needs a second factor.
EU_MEMBER = "sophie.laurent@ec.example.eu"
JP_MEMBER = "yui.suzuki@mic.example.jp"
# Where the page tests leave screenshots of what they saw; PORTAL_SCREENSHOTS=tests/screenshots refreshes the README's.
SCREENSHOTS = os.environ.get("PORTAL_SCREENSHOTS")

try:
    from axe_playwright_python.sync_playwright import Axe
    from playwright.sync_api import Page, expect, sync_playwright
except ImportError:  # pragma: no cover - the reason is reported by the skip below
    sync_playwright = None


def _browser_missing() -> str | None:
    if sync_playwright is None:
        return "the playwright package is not installed (make install)"
    if not CHROMIUM.exists():
        return f"Chromium is not installed at {CHROMIUM} (apt-get install chromium chromium-driver)"
    return None


missing = _browser_missing()
if missing and os.environ.get("PORTAL_REQUIRE_BROWSER"):
    # CI installs the browser; there a missing one is a failure, never a silent skip.
    raise RuntimeError(f"browser tests required but {missing}")
pytestmark = [
    pytest.mark.skipif(bool(missing), reason=f"browser tests skipped: {missing}"),
    # The served portal runs on the pass's database: SQLite in one pass of `make test`, PostgreSQL in the other.
    pytest.mark.database,
]



@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """The demo portal served by `flask run` in its own process; its base URL."""
    instance = tmp_path_factory.mktemp("browser") / "instance"
    # The tests sign the same demo officials in again and again: the sign-in rate limits (tested in
    # test_ratelimits.py) would soon refuse them.
    env = {**os.environ, "PORTAL_INSTANCE_PATH": str(instance), "FLASK_APP": "portal",
           "PORTAL_RATE_LIMIT_SIGN_IN_USER": "off", "PORTAL_RATE_LIMIT_SIGN_IN_ADDRESS": "off"}
    env.pop("PORTAL_TEST_DATABASE_URL", None)
    if os.environ.get("PORTAL_TEST_DATABASE_URL"):
        database = f"{postgres_test_database()}_browser"
        recreate_database(postgres_maintenance_url(), database)
        env["PORTAL_DATABASE_URL"] = postgres_maintenance_url().set(database=database).render_as_string(
            hide_password=False)
    flask = [sys.executable, "-m", "flask", "--app", "portal"]
    for command in (["init"], ["demo"]):
        subprocess.run(flask + command, env=env, check=True, capture_output=True)
    port = free_port()
    log = (instance / "server.log").open("wb")
    process = subprocess.Popen(flask + ["run", "--host", "127.0.0.1", "--port", str(port), "--no-reload"],
                               env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            urllib.request.urlopen(f"{base}/login", timeout=2)
            break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                raise RuntimeError((instance / "server.log").read_text(errors="replace"))
            time.sleep(0.2)
    yield base
    process.terminate()
    process.wait(timeout=10)
    log.close()


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser, server):
    """A fresh browser profile per test; fails the test on any CSP violation or script error."""
    context = browser.new_context(base_url=server, viewport={"width": 1280, "height": 900})
    page = context.new_page()
    problems: list[str] = []
    # A 4xx page is an expected answer here; anything else the console reports (a CSP violation,
    # a script error) is a defect.
    page.on("console", lambda m: problems.append(m.text)
            if m.type == "error" and not m.text.startswith("Failed to load resource: the server responded with a status of 4")
            else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    yield page
    context.close()
    assert not problems, f"the browser reported errors: {problems}"


def sign_in(page: Page, email: str) -> None:
    """Sign in whatever the interface language (fields by id, not by their translated labels)."""
    page.goto("/login")
    page.locator("#email").fill(email)
    page.locator("#password").fill(DEMO_PASSWORD)
    page.locator("main button[type=submit]").click()
    expect(page.locator("form[action='/logout']")).to_be_attached()


def compose(page: Page, channel: str, kind: str, title: str, body: str, **fields: str) -> None:
    page.goto(f"/channels/{channel}")
    page.get_by_role("link", name=f"New {kind}").click()
    page.get_by_label("Title").fill(title)
    page.locator("#body").fill(body)
    for field, value in fields.items():
        page.locator(f"#{field}").fill(value)
    page.get_by_role("button", name=re.compile("^Post")).click()


def test_sign_in_rejects_a_wrong_password_and_keeps_the_address(page):
    page.goto("/login")
    page.get_by_label("E-mail").fill(EU_MEMBER)
    page.get_by_label("Password").fill("not the password at all")
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("body")).to_contain_text("e-mail address or password is wrong")
    expect(page.get_by_label("E-mail")).to_have_value(EU_MEMBER)


def test_a_note_of_each_kind_is_posted_through_the_form(page):
    sign_in(page, EU_MEMBER)
    compose(page, "dsa-idpa-cooperation", "update", "Browser update on notice forms",
            "The **notice** forms changed in October.")
    expect(page.get_by_role("heading", name="Browser update on notice forms")).to_be_visible()
    expect(page.locator("strong", has_text="notice")).to_be_visible()

    compose(page, "dsa-idpa-cooperation", "case", "Browser case: Kairo repeat notices",
            "Opened after repeated notices.", case_reference="DSA-BR-2026-01")
    expect(page.get_by_role("heading", name="Browser case: Kairo repeat notices")).to_be_visible()
    expect(page.locator("body")).to_contain_text("DSA-BR-2026-01")

    compose(page, "dsa-idpa-cooperation", "question", "Browser question on statements of reasons",
            "How do you count statements of reasons?", answer_by="2031-01-15")
    expect(page.get_by_role("heading", name="Browser question on statements of reasons")).to_be_visible()
    expect(page.locator("body")).to_contain_text("2031-01-15")


def test_a_form_with_a_mistake_keeps_what_was_typed(page):
    sign_in(page, EU_MEMBER)
    compose(page, "dsa-idpa-cooperation", "question", "A question without a deadline",
            "Typed text that must not be lost.")
    # The browser's own validation stops an empty required date; the page must not have moved on.
    expect(page.locator("#body")).to_have_value("Typed text that must not be lost.")


def test_a_reply_to_a_reply_is_nested_in_the_thread(page, browser, server):
    sign_in(page, EU_MEMBER)
    compose(page, "dsa-idpa-cooperation", "update", "Browser thread for nesting", "Start of the thread.")
    page.locator("#reply-body").fill("First answer from the EU side.")
    page.get_by_role("button", name="Post reply").click()
    first = page.locator("li.reply", has_text="First answer from the EU side.")
    expect(first).to_be_visible()
    note_url = page.url.split("#")[0]

    other = browser.new_context(base_url=server).new_page()
    sign_in(other, JP_MEMBER)
    other.goto(note_url)
    # The Japanese official's interface is in Japanese: find the controls by what they do, not their words.
    answered = other.locator("li.reply", has_text="First answer from the EU side.")
    answered.locator("a.reply-to").click()
    # The reply form opens right under that reply, on the same page, ready to type in.
    expect(answered.locator("#reply-body")).to_be_focused()
    expect(answered.locator("label[for=reply-body]")).to_contain_text("への返信")
    assert other.url.split("#")[0] == note_url
    # Cancelling puts the form back at the end of the thread, answering the note again.
    other.locator("#respond button[type=button]").click()
    expect(answered.locator("#reply-body")).to_have_count(0)
    expect(other.locator("#respond input[name=parent_id]")).to_have_value("")
    answered.locator("a.reply-to").click()
    other.locator("#reply-body").fill("日本側からの回答です。")
    other.locator("form:has(#reply-body) button[type=submit]").click()
    nested = other.locator("li.reply.level-1", has_text="日本側からの回答です。")
    expect(nested).to_be_visible()
    other.context.close()

    page.reload()
    expect(page.locator("li.reply.level-1", has_text="日本側からの回答です。")).to_be_visible()


def test_without_javascript_reply_leads_to_the_sub_thread_form(browser, server):
    context = browser.new_context(base_url=server, java_script_enabled=False)
    page = context.new_page()
    sign_in(page, EU_MEMBER)
    compose(page, "dsa-idpa-cooperation", "update", "Browser thread without scripts", "Start.")
    page.locator("#reply-body").fill("A first answer.")
    page.get_by_role("button", name="Post reply").click()
    page.locator("li.reply", has_text="A first answer.").locator("a.reply-to").click()
    assert "/replies/" in page.url
    page.locator("#reply-body").fill("An answer to the answer.")
    page.get_by_role("button", name="Post reply").click()
    expect(page.locator("li.reply.level-1", has_text="An answer to the answer.")).to_be_visible()
    context.close()


@pytest.mark.parametrize("query, title", [
    ("trusted flaggers", "Trusted flaggers in Germany"),
    ("削除申出", "Tsunagu：削除申出への通知遅延に関する報告徴収"),
])
def test_search_finds_english_and_japanese_notes(page, query, title):
    sign_in(page, EU_MEMBER)
    page.goto("/search")
    page.locator("#q").fill(query)
    page.locator("#q").press("Enter")
    expect(page.locator("main")).to_contain_text(title)
    expect(page.locator("main mark").first).to_be_visible()


def test_search_never_shows_a_channel_the_reader_cannot_see(page):
    sign_in(page, JP_MEMBER)
    page.goto("/search?q=coordination")
    expect(page.locator("main")).not_to_contain_text("EU internal coordination")
    assert page.goto("/channels/eu-coordination").status == 404


def test_keyboard_only_sign_in_and_skip_link(page):
    page.goto("/login")
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name=re.compile("Skip", re.I))).to_be_focused()
    page.get_by_label("E-mail").focus()
    page.keyboard.type(EU_MEMBER)
    page.keyboard.press("Tab")
    page.keyboard.type(DEMO_PASSWORD)
    page.keyboard.press("Enter")
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()


def test_switching_language_changes_the_interface_and_is_remembered(page, browser, server):
    sign_in(page, EU_MEMBER)
    expect(page.locator("html")).to_have_attribute("lang", "en")
    page.get_by_role("button", name="日本語").click()
    expect(page.locator("html")).to_have_attribute("lang", "ja")
    expect(page.get_by_role("link", name="ダッシュボード")).to_be_visible()
    # The choice is the account's: a new browser signing in gets Japanese at once.
    other = browser.new_context(base_url=server, locale="en-GB").new_page()
    other.goto("/login")
    expect(other.locator("html")).to_have_attribute("lang", "en")
    sign_in(other, EU_MEMBER)
    expect(other.locator("html")).to_have_attribute("lang", "ja")
    other.context.close()
    page.get_by_role("button", name="English").click()
    expect(page.locator("html")).to_have_attribute("lang", "en")


def test_before_sign_in_the_browsers_language_is_used(browser, server):
    context = browser.new_context(base_url=server, locale="ja-JP")
    page = context.new_page()
    page.goto("/login")
    expect(page.locator("html")).to_have_attribute("lang", "ja")
    expect(page.get_by_role("button", name="ログイン")).to_be_visible()
    context.close()


MAIN_PAGES = [("dashboard", "/"), ("channel", "/channels/app-stores"), ("search", "/search?q=DMA"),
              ("settings", "/account")]


@pytest.mark.parametrize("email", [EU_MEMBER, JP_MEMBER])
def test_main_pages_meet_wcag_aa(page, email):
    """axe-core's WCAG 2.1 A and AA rules (contrast, labels, landmarks, lang) on the main pages."""
    sign_in(page, email)
    axe = Axe()
    for _, path in MAIN_PAGES + [("note", "/search?q=trusted+flaggers")]:
        page.goto(path)
        results = axe.run(page, options={"runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa", "wcag21aa"]}})
        problems = [(v["id"], [n["target"] for n in v["nodes"]][:3]) for v in results.response["violations"]]
        assert not problems, f"{path}: {problems}"


@pytest.mark.parametrize("width", [1280, 390])
@pytest.mark.parametrize("email", [EU_MEMBER, JP_MEMBER])
def test_main_pages_render_without_horizontal_scrolling(page, width, email, tmp_path):
    """Officials read on phones too: nothing may be wider than the screen."""
    page.set_viewport_size({"width": width, "height": 900})
    sign_in(page, email)
    shots = Path(SCREENSHOTS or tmp_path)
    shots.mkdir(parents=True, exist_ok=True)
    lang = "ja" if email == JP_MEMBER else "en"
    for name, path in MAIN_PAGES:
        page.goto(path)
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        wide = page.evaluate("""Array.from(document.querySelectorAll('body *'))
            .filter(e => e.getBoundingClientRect().right > window.innerWidth + 0.5)
            .slice(0, 5).map(e => e.tagName + '.' + e.className + '#' + e.id)""")
        assert overflow <= 0, f"{path} scrolls sideways by {overflow}px at {width}px: {wide}"
        page.screenshot(path=str(shots / f"{name}-{lang}-{width}.png"))


def test_the_accessibility_check_sees_a_broken_page(page):
    """The WCAG test above would pass vacuously if axe did not run: show that it finds faults."""
    sign_in(page, EU_MEMBER)
    page.evaluate("""() => {
        const input = document.createElement('input');
        document.querySelector('main').append(input);
        document.documentElement.removeAttribute('lang');
    }""")
    results = Axe().run(page, options={"runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa"]}})
    found = {v["id"] for v in results.response["violations"]}
    assert {"label", "html-has-lang"} <= found


def test_compose_shows_a_live_preview_as_you_type(page):
    sign_in(page, EU_MEMBER)
    page.goto("/channels/dsa-idpa-cooperation/new/update")
    page.locator("#body").fill("A **bold** claim with <img src=x onerror=alert(1)>")
    live = page.locator(".live-preview")
    expect(live.locator("strong", has_text="bold")).to_be_visible()
    expect(live.locator("img[onerror]")).to_have_count(0)


def test_preview_and_posting_work_without_javascript(browser, server):
    context = browser.new_context(base_url=server, java_script_enabled=False)
    page = context.new_page()
    sign_in(page, EU_MEMBER)
    page.goto("/channels/dsa-idpa-cooperation/new/update")
    page.locator("#title").fill("Posted without JavaScript")
    page.locator("#body").fill("Plain *emphasis*.")
    page.get_by_role("button", name="Preview").click()
    expect(page.locator("section.preview em", has_text="emphasis")).to_be_visible()
    expect(page.locator("#title")).to_have_value("Posted without JavaScript")
    page.get_by_role("button", name="Post update").click()
    expect(page.get_by_role("heading", name="Posted without JavaScript")).to_be_visible()
    context.close()


def test_subscribing_to_a_topic(page):
    sign_in(page, EU_MEMBER)
    page.goto("/subscriptions")
    page.locator("#target").select_option("topic")
    page.locator("#topic").select_option(index=1)
    topic = page.locator("#topic option:checked").inner_text()
    page.locator("#frequency").select_option("weekly")
    page.locator("form.row-form button[type=submit]").click()
    row = page.locator("tr", has_text=topic)
    expect(row).to_be_visible()
    expect(row).to_contain_text("weekly")


def test_the_other_side_acknowledges_a_note_in_one_click(page, browser, server):
    sign_in(page, EU_MEMBER)
    page.goto("/channels/dsa-idpa-cooperation/new/update")
    page.locator("#title").fill("Browser note awaiting acknowledgement")
    page.locator("#body").fill("Please confirm receipt of the revised guidance.")
    page.locator("input[name=request_acknowledgement]").check()
    page.get_by_role("button", name="Post update").click()
    note_url = page.url
    expect(page.locator("#acknowledgement")).to_contain_text("Ministry of Internal Affairs and Communications")

    other = browser.new_context(base_url=server).new_page()
    sign_in(other, JP_MEMBER)  # reads Japanese: the button is found by what it posts to
    other.goto(note_url)
    other.locator("form[action$='/acknowledge'] button[type=submit]").click()
    expect(other.locator("#acknowledgement")).to_contain_text("Suzuki Yui")
    expect(other.locator("form[action$='/acknowledge']")).to_have_count(0)
    other.context.close()

    page.reload()
    expect(page.locator("#acknowledgement")).to_contain_text("Suzuki Yui")
