"""Search as officials and attackers meet it: languages, query language, permissions, staying in step."""
from __future__ import annotations

import errno
import gc
import json
import os
import random
import signal
import subprocess
import sys
import textwrap
from datetime import date, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select
from whoosh.writing import SegmentWriter

from portal.models import Note, SearchOutbox
from portal.search.query import rewrite_japanese, split_run
from portal.services import channels, notes, replies
from portal.services import search as search_service
from tests.conftest import login

ROOT = Path(__file__).resolve().parents[1]


def _search(client, q, **params):
    response = client.get("/search", query_string={"q": q, **params})
    assert response.status_code == 200, response.get_data(as_text=True)[:1000]
    return response.get_data(as_text=True)


def _post(db, world, channel, title, body, *, kind="update", author=None, lang="en", **fields):
    note = notes.post_note(db, channel, author or world.eu_member, kind,
                           {"title": title, "body": body, "lang": lang, **fields})
    db.commit()
    return note


def test_english_words_find_other_forms(client, db, world):
    _post(db, world, world.joint, "Gatekeeper platform obligations", "The proceedings were opened in March.")
    login(client, world.eu_member)
    assert "Gatekeeper platform obligations" in _search(client, "platforms")
    assert "Gatekeeper platform obligations" in _search(client, "proceeding")
    assert "Gatekeeper platform obligations" in _search(client, "GATEKEEPERS")


@pytest.mark.parametrize("word", ["違法コンテンツ", "削除", "競争促進", "スマートフォン"])
def test_japanese_words_inside_sentences(client, db, world, word):
    _post(db, world, world.joint, "情報流通プラットフォーム対処法の運用",
          "大規模プラットフォーム事業者は違法コンテンツの削除要請に迅速に対応し、"
          "スマートフォンの競争促進に関する法律との関係も整理する。", lang="ja")
    _post(db, world, world.joint, "Scattered characters",
          "違法な行為とコンテンツ。削る、除く。競争と促進。スマート、フォン。", lang="ja")
    login(client, world.jp_member)
    page = _search(client, word)
    assert "情報流通プラットフォーム対処法の運用" in page
    assert "Scattered characters" not in page


def test_mixed_language_note_and_full_width_query(client, db, world):
    _post(db, world, world.joint, "DSA と 情報流通プラットフォーム対処法", "Notice and action: 削除要請への対応", lang="ja")
    login(client, world.eu_member)
    assert "DSA と 情報流通プラットフォーム対処法" in _search(client, "ＤＳＡ 削除要請")
    assert "DSA と 情報流通プラットフォーム対処法" in _search(client, "notice action")


def test_query_language(client, db, world):
    _post(db, world, world.joint, "Notice and action under the DSA", "We discussed notice and action mechanisms.")
    _post(db, world, world.joint, "Action plan on notices", "An action plan; notice periods vary.")
    _post(db, world, world.joint, "Interoperability requests", "Interoperability of messaging.")
    login(client, world.eu_member)
    phrase = _search(client, '"notice and action"')
    assert "Notice and action under the DSA" in phrase and "Action plan on notices" not in phrase
    either = _search(client, "interoperability OR mechanisms")
    assert "Interoperability requests" in either and "Notice and action under the DSA" in either
    assert "Action plan on notices" not in either
    without = _search(client, "notice -mechanisms")
    assert "Action plan on notices" in without and "Notice and action under the DSA" not in without


def test_all_words_must_match_unless_nothing_has_them_all(client, db, world):
    _post(db, world, world.joint, "Both words here", "gecko and iguana")
    _post(db, world, world.joint, "Only one word", "gecko alone")
    login(client, world.eu_member)
    page = _search(client, "gecko iguana")
    assert "Both words here" in page and "Only one word" not in page and "contain some of them" not in page
    fallback = _search(client, "gecko chameleon")
    assert "Nothing contains all of these words" in fallback
    assert "Both words here" in fallback and "Only one word" in fallback


def test_hyphenated_words_are_not_exclusions(client, db, world):
    _post(db, world, world.joint, "Anti-steering provisions", "Rules against anti-steering clauses in app stores.")
    login(client, world.eu_member)
    assert "Anti-steering provisions" in _search(client, "anti-steering")
    assert "Anti-steering provisions" in _search(client, "app anti-steering")
    assert "Anti-steering provisions" not in _search(client, "app -steering")


def test_field_filters(client, db, world):
    due = (date.today() - timedelta(days=2)).isoformat()
    _post(db, world, world.joint, "Overdue question on app stores", "Alternative app stores?",
          kind="question", answer_by=due, topics=["app-stores"], articles="DMA Art. 6(4)")
    _post(db, world, world.jp, "JP case on app stores", "App stores fee review", kind="case",
          author=world.jp_member, case_status="investigating", lang="en")
    login(client, world.jp_member)
    assert "JP case on app stores" in _search(client, "app stores kind:case")
    assert "Overdue question on app stores" not in _search(client, "app stores kind:case")
    assert "Overdue question on app stores" in _search(client, "is:overdue")
    assert "Overdue question on app stores" in _search(client, "topic:app-stores")
    assert "Overdue question on app stores" in _search(client, 'article:"DMA Art. 6"')
    assert "JP case on app stores" in _search(client, "side:jp app")
    assert "JP case on app stores" not in _search(client, "side:eu app")
    assert "JP case on app stores" in _search(client, "status:investigating")
    assert "JP case on app stores" in _search(client, "channel:jp-channel")
    assert "JP case on app stores" in _search(client, "org:jftc app")
    assert "JP case on app stores" in _search(client, "author:kenji app")
    assert "JP case on app stores" not in _search(client, "app -side:jp")
    today = date.today()
    assert "JP case on app stores" in _search(client, f"app after:{(today - timedelta(days=1)).isoformat()}")
    assert "JP case on app stores" not in _search(client, f"app before:{today.isoformat()}")
    # The page's controls do the same as typed filters.
    assert "Overdue question on app stores" not in _search(client, "app", kind="case")
    assert "JP case on app stores" in _search(client, "app", kind="case")


def test_citation_finds_the_article_and_the_notes_citing_it(client, db, world):
    _post(db, world, world.joint, "Interoperability of connected devices", "Features for smartwatches.",
          articles="DMA Art. 6(7)")
    login(client, world.eu_member)
    page = _search(client, "DMA Art 6(7)")
    assert "Interoperability of connected devices" in page
    assert "/regulations/dma#art-6" in page


def test_sort_newest_and_pagination(client, db, world):
    for i in range(25):
        _post(db, world, world.joint, f"Transparency report {i:02d}", "quetzal reporting template")
    login(client, world.eu_member)
    first = _search(client, "quetzal", sort="newest")
    assert first.index("Transparency report 24") < first.index("Transparency report 23")
    assert "25 results" in first and "Page 1 of 2" in first
    second = _search(client, "quetzal", sort="newest", page=2)
    assert "Transparency report 00" in second and "Transparency report 24" not in second
    # Undated regulation-index entries come after every note when sorting by newest.
    mixed = _search(client, "transparency", sort="newest")
    assert "Transparency report 24" in mixed and "#art-" not in mixed
    assert "#art-" in _search(client, "transparency", sort="newest", page=2)


def test_facets_count_only_visible_notes(client, db, world):
    _post(db, world, world.joint, "Joint ranking note", "ranking signals", kind="case")
    _post(db, world, world.jp, "JP ranking note", "ranking signals", kind="question", author=world.jp_member,
          answer_by=date.today().isoformat())
    login(client, world.eu_member)
    page = _search(client, "ranking")
    assert "1 result" in page
    assert "JP ranking note" not in page and "jp-channel" not in page and "question</a>" not in page


def test_snippets_are_highlighted_and_sanitised(client, db, world):
    _post(db, world, world.joint, "Snippet test", "Before <script>alert(1)</script> the keyword appears here.")
    login(client, world.eu_member)
    page = _search(client, "keyword")
    assert "<mark>keyword</mark>" in page
    assert "<script>alert(1)" not in page


def test_in_the_fallback_documents_with_more_of_the_words_come_first(client, db, world):
    _post(db, world, world.joint, "Three of the words", "Gradual withdrawal of cloud switching charges.")
    _post(db, world, world.joint, "Two of the words", "Charges for switching between providers.")
    _post(db, world, world.joint, "None of the words", "Interoperability of messaging.")
    login(client, world.eu_member)
    page = _search(client, "cloud switching charges mainframe")  # nothing has all four
    assert "Nothing contains all of these words" in page
    assert page.index("Three of the words") < page.index("Two of the words")
    assert "None of the words" not in page
    # An excluded word still excludes.
    without = _search(client, "switching charges -cloud")
    assert "Two of the words" in without and "Three of the words" not in without


@pytest.mark.parametrize(("run", "pieces"), [
    ("個人情報の定義", ["個人情報", "定義"]),
    ("真正な成立の推定", ["真正", "成立", "推定"]),
    ("外国にある第三者への提供", ["外国", "第三者", "提供"]),
    ("個人データの漏えい等の報告", ["個人データ", "漏えい等", "報告"]),
    ("取得する", ["取得"]),
    ("この法律", ["法律"]),
    ("取り扱う", ["取り扱"]),  # a one-character piece (取) would only match at the edges of runs
    ("法の適用", ["法の適用"]),
    ("できる", ["できる"]),
    ("違法コンテンツ", ["違法コンテンツ"]),
])
def test_a_japanese_run_is_cut_at_its_hiragana(run, pieces):
    assert split_run(run) == pieces


def test_japanese_query_text_rewriting():
    names = {"個人情報保護法": ("個人情報の保護に関する法律", "個人情報保護法"),
             "個人情報の保護に関する法律": ("個人情報の保護に関する法律", "個人情報保護法")}
    assert rewrite_japanese("個人情報の定義") == "(個人情報 定義)"
    assert rewrite_japanese("保有個人データの開示請求 OR 匿名加工情報") == "(保有個人データ 開示請求) OR 匿名加工情報"
    assert rewrite_japanese("電気通信事業法第4条") == "(電気通信事業法 第4条)"
    assert rewrite_japanese("同法第6条第7項") == "(同法 第6条第7項)"  # one reference stays whole
    assert rewrite_japanese("個人情報保護法第23条", names) == '(("個人情報の保護に関する法律" OR "個人情報保護法") 第23条)'
    # Quoted text, + and - words, and English are left as typed.
    for text in ('"個人情報の定義"', "-個人情報の定義", "+個人情報の定義", "notice and action", "違法コンテンツ 削除"):
        assert rewrite_japanese(text, names) == text


def test_a_japanese_question_finds_its_words_apart(client, db, world):
    _post(db, world, world.joint, "個人情報の保護に関する法律 第二条（定義）",
          "この法律において「個人情報」とは、生存する個人に関する情報であって、", lang="ja")
    _post(db, world, world.joint, "Scattered characters", "個人の情報を定める義務。", lang="ja")
    login(client, world.jp_member)
    page = _search(client, "個人情報の定義")
    assert "個人情報の保護に関する法律 第二条（定義）" in page
    assert "Scattered characters" not in page


def test_a_short_law_name_and_an_article_number_find_the_statute(client, db, world):
    _post(db, world, world.joint, "個人情報の保護に関する法律 第二十七条（第三者提供の制限）",
          "個人情報取扱事業者は、あらかじめ本人の同意を得ないで、個人データを第三者に提供してはならない。", lang="ja")
    _post(db, world, world.joint, "電気通信事業法 第3条〜第5条",
          "第4条（秘密の保護） 電気通信事業者の取扱中に係る通信の秘密は、侵してはならない。", lang="ja")
    login(client, world.jp_member)
    for query in ("個人情報保護法第27条", "個人情報保護法 第２７条", "個人情報の保護に関する法律第二十七条"):
        assert "（第三者提供の制限）" in _search(client, query), query
    assert "電気通信事業法 第3条〜第5条" in _search(client, "電気通信事業法第4条")


VISIBILITY = {
    # channel: who finds its note
    "joint": {"eu_member", "jp_member", "outsider", "eu_admin", "jp_admin"},
    "eu": {"eu_member", "outsider", "eu_admin"},
    "jp": {"jp_member", "jp_admin"},
    "private": {"eu_member", "jp_member"},
}


@pytest.mark.parametrize("channel_name", sorted(VISIBILITY))
def test_results_only_from_visible_channels(app, db, world, channel_name):
    author = world.jp_member if channel_name in ("jp", "private") else world.eu_member
    _post(db, world, getattr(world, channel_name), f"Secret zebra note {channel_name}", "zebra crossing findings",
          author=author)
    reply_note = world.notes[channel_name]
    replies.post_reply(db, reply_note, author, "zebra in a reply")
    db.commit()
    for name in ("eu_member", "jp_member", "outsider", "eu_admin", "jp_admin"):
        client = app.test_client()
        login(client, getattr(world, name))
        page = _search(client, "zebra")
        visible = name in VISIBILITY[channel_name]
        assert (f"Secret zebra note {channel_name}" in page) is visible, name
        assert ("zebra in a reply" in page or "#reply-" in page) is visible, name
        results = "{}件" if getattr(world, name).lang == "ja" else "{} results"  # the page is in the reader's language
        assert (results.format(2) in page) is visible and (results.format(0) in page) is not visible, name


def test_membership_change_takes_effect_on_the_next_query(app, client, db, world):
    _post(db, world, world.private, "Private okapi note", "okapi", author=world.jp_member)
    login(client, world.outsider)
    assert "Private okapi note" not in _search(client, "okapi")
    channels.add_member(db, world.private, world.outsider, actor=None)
    db.commit()
    assert "Private okapi note" in _search(client, "okapi")
    channels.remove_member(db, world.private, world.outsider, actor=world.eu_admin)
    db.commit()
    assert "Private okapi note" not in _search(client, "okapi")


def test_deleted_notes_and_replies_never_appear(app, client, db, world):
    note = _post(db, world, world.joint, "Deleted narwhal note", "narwhal")
    reply = replies.post_reply(db, world.notes["joint"], world.eu_member, "narwhal reply")
    db.commit()
    login(client, world.eu_member)
    assert "Deleted narwhal note" in _search(client, "narwhal")
    notes.delete_note(db, note, world.eu_member)
    replies.delete_reply(db, reply, world.eu_member)
    db.commit()
    page = _search(client, "narwhal")
    assert "Deleted narwhal note" not in page and "0 results" in page
    admin = app.test_client()
    login(admin, world.eu_admin)
    admin.post(f"/notes/{note.id}/restore")
    assert "Deleted narwhal note" in _search(client, "narwhal")


def test_deleting_a_note_hides_its_replies_and_restoring_brings_them_back(app, client, db, world):
    note = world.notes["joint"]
    replies.post_reply(db, note, world.jp_member, "a reply about quokkas")
    db.commit()
    login(client, world.eu_member)
    assert "1 result" in _search(client, "quokkas")
    notes.delete_note(db, note, world.eu_member)
    db.commit()
    assert "0 results" in _search(client, "quokkas")
    notes.restore_note(db, note, world.eu_admin)
    db.commit()
    assert "1 result" in _search(client, "quokkas")


def test_every_change_writes_the_outbox_in_the_same_transaction(app, db, world):
    before = db.scalar(select(func.count(SearchOutbox.id)))
    note = notes.post_note(db, world.joint, world.eu_member, "update", {"title": "Outbox", "body": "x"})
    db.rollback()
    assert db.scalar(select(func.count(SearchOutbox.id))) == before  # rolled back together
    note = _post(db, world, world.joint, "Outbox", "x")
    rows = db.execute(select(SearchOutbox.entity, SearchOutbox.entity_id).where(SearchOutbox.id > before)).all()
    assert ("note", note.id) in rows


def test_commits_after_the_random_module_is_seeded_again_all_reach_the_index(app, db, world, caplog):
    """Whatever seeds `random` (Hypothesis does, for each example) once made Whoosh give a new segment
    the name of an existing one: the commit failed and the note was not searchable until a later sync."""
    index = search_service.index_for(app)
    for n in range(3):
        random.seed(2026)
        _post(db, world, world.joint, f"Kestrel report {n}", "kestrel")
        assert not search_service.has_pending(db, index), f"note {n} is still waiting in the outbox"
    assert "not updated now" not in caplog.text
    assert index.keys()[1] == set()  # no duplicates either


def test_a_failed_index_commit_gives_its_lock_back_at_once(app, db, world, monkeypatch):
    """A disk that fills up during the index commit: the note is saved, its change waits in the outbox,
    and the next writer gets the lock at once (it used to wait for the garbage collector)."""
    index = search_service.index_for(app)

    def disk_full(self, *args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(SegmentWriter, "_finalize_segment", disk_full)
    gc.disable()  # the collector would free the abandoned writer, and its lock, at a moment of its choosing
    try:
        note = _post(db, world, world.joint, "Written before the disk filled up", "kestrel")
        assert search_service.has_pending(db, index)
        monkeypatch.undo()
        with index.writer(timeout=0):
            pass
    finally:
        gc.enable()
    assert search_service.sync(app) >= 1
    assert not search_service.has_pending(db, index)
    assert f"note:{note.id}" in index.keys()[0]


@pytest.mark.parametrize("query", [
    '"unbalanced quote', "OR", "-", "lonely OR", "AND OR NOT", "-(", "((", "foo:bar", "kind:", "kind:nonsense",
    "before:31/12/2026", "after:yesterday", "x" * 10_000, "ctrl\x00\x07chars\x1b", "*", "te*", "[a TO z]",
    "is:bogus", "side:mars", 'article:"XYZ Art. 1"', "channel:does-not-exist", "title:boost^5", "\u202e\u200b",
])
def test_malformed_queries_still_answer(client, world, query):
    login(client, world.eu_member)
    response = client.get("/search", query_string={"q": query})
    assert response.status_code == 200


def test_malformed_queries_explain_themselves(client, world):
    login(client, world.eu_member)
    assert "no filter called foo" in _search(client, "foo:bar")
    assert "needs a date as YYYY-MM-DD" in _search(client, "before:31/12/2026")
    assert "Only the first 500 characters" in _search(client, "x" * 10_000)
    assert "kind: is update, case or question" in _search(client, "kind:nonsense")


def test_help_page(client, world):
    login(client, world.eu_member)
    page = client.get("/search/help").get_data(as_text=True)
    for syntax in ('"notice and action"', "kind:case", "is:overdue", "before:", "side:eu", "-draft", " OR "):
        assert syntax in page


# The CLI ---------------------------------------------------------------------------------------

def test_cli_query_as_user_json(runner, db, world):
    _post(db, world, world.private, "Private kiwi note", "kiwi", author=world.jp_member)
    _post(db, world, world.joint, "Joint kiwi note", "kiwi kiwi")
    result = runner.invoke(args=["search", "query", "kiwi", "--as", world.outsider.email, "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert [row["title"] for row in rows] == ["Joint kiwi note"]
    assert set(rows[0]) == {"id", "external_id", "kind", "title", "score", "snippet", "url"}
    assert rows[0]["url"].startswith("http://portal.test/notes/")
    member = runner.invoke(args=["search", "query", "kiwi", "--as", world.jp_member.email, "--json", "--limit", "1"])
    assert len(json.loads(member.stdout)) == 1
    plain = runner.invoke(args=["search", "query", "kiwi", "--as", world.jp_member.email])
    assert "2 results" in plain.stdout


def test_a_new_note_and_its_replies_in_one_batch_are_indexed_once(app, db, world):
    """As after the migration that enqueues existing data: the note and its replies are both pending."""
    index = search_service.index_for(app)
    note = world.notes["joint"]
    index.remove_note(note.id)
    index.set_position({"applied": 0, "gaps": {}})  # replay the whole outbox in one batch
    search_service.sync(app)
    stamps, duplicates = index.keys()
    assert f"reply:{world.replies['joint'].id}" in stamps and not duplicates
    assert search_service.verify(db, index).ok


def test_an_import_updates_the_index_once_at_the_end(app, runner, client, db, world, tmp_path, monkeypatch):
    """One savepoint per line is not one index commit per line (that made big imports take minutes);
    a bad line's savepoint rollback does not forget the lines before it."""
    syncs = []
    real_sync = search_service.sync
    monkeypatch.setattr(search_service, "sync", lambda *args, **kwargs: syncs.append(1) or real_sync(*args, **kwargs))
    path = tmp_path / "notes.jsonl"
    path.write_text("\n".join([
        json.dumps({"id": "k-1", "title": "First kestrel note", "body": "kestrel", "lang": "en"}),
        "not json",
        json.dumps({"id": "k-2", "title": "Second kestrel note", "body": "kestrel", "lang": "en"}),
    ]) + "\n", encoding="utf-8")
    result = runner.invoke(args=["notes", "import", str(path), "--channel", world.joint.slug,
                                 "--author", world.eu_member.email])
    assert "Imported 2 new and 0 updated notes; 1 lines skipped." in result.stdout
    assert syncs == [1]
    db.rollback()
    assert not search_service.has_pending(db, search_service.index_for(app))
    login(client, world.eu_member)
    page = _search(client, "kestrel")
    assert "First kestrel note" in page and "Second kestrel note" in page


def test_verify_finds_and_fixes_duplicates(app, runner, db, world):
    index = search_service.index_for(app)
    reply = world.replies["joint"]
    with index.writer() as writer:
        writer.add_document(**search_service.reply_document(reply, reply.note))
    result = runner.invoke(args=["search", "verify"])
    assert result.exit_code == 1 and f"1 duplicated: reply:{reply.id}" in result.stdout
    runner.invoke(args=["search", "verify", "--fix"])
    assert not index.keys()[1]


def test_cli_rebuild_and_verify(app, runner, db, world):
    note = _post(db, world, world.joint, "Verify me", "verification")
    index = search_service.index_for(app)
    index.remove([f"note:{note.id}"])
    result = runner.invoke(args=["search", "verify"])
    assert result.exit_code == 1 and f"1 missing: note:{note.id}" in result.stdout
    assert runner.invoke(args=["search", "verify", "--fix"]).exit_code == 0
    assert "matches" in runner.invoke(args=["search", "verify"]).stdout
    rebuilt = runner.invoke(args=["search", "rebuild"])
    assert rebuilt.exit_code == 0 and "Indexed" in rebuilt.stdout
    assert "matches" in runner.invoke(args=["search", "verify"]).stdout


# Never out of step: real processes ------------------------------------------------------------

def _run(code: str, env: dict, timeout: int = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=ROOT, env={**os.environ, **env},
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def shared(tmp_path, app, world):
    """A database and an on-disk index directory that other processes use too."""
    return {"PORTAL_DATABASE_URL": app.config["DATABASE_URL"], "PORTAL_INSTANCE_PATH": str(tmp_path / "host"),
            "PORTAL_SECRET_KEY": "test", "PORTAL_ARGON2_TIME_COST": "1", "PORTAL_ARGON2_MEMORY_KIB": "1024"}


POST_AND_DIE = """
    import os, signal
    from portal import create_app
    from portal.db import get_session
    from portal.models import Channel, User
    from portal.services import notes, search
    from sqlalchemy import select
    app = create_app()
    # Die for real between the database commit and the index write.
    search.sync = lambda *args, **kwargs: os.kill(os.getpid(), signal.SIGKILL)
    with app.app_context():
        db = get_session()
        channel = db.scalar(select(Channel).where(Channel.slug == "joint-channel"))
        author = db.scalar(select(User).where(User.email == "eva@ec.example.eu"))
        notes.post_note(db, channel, author, "update", {"title": "Survivor of a crash", "body": "wombat"})
        db.commit()
    print("not killed")
"""


def test_a_process_killed_after_commit_loses_nothing(shared, app, world):
    killed = _run(POST_AND_DIE, shared)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    # The note is committed but this host's index never saw it...
    check = _run("""
        from portal import create_app
        from portal.services import search
        app = create_app()
        print(search.index_for(app).searcher().doc_count())
        from portal.db import get_session
        with app.app_context():
            from portal.models import User
            from sqlalchemy import select
            from datetime import date
            db = get_session()
            user = db.scalar(select(User).where(User.email == "eva@ec.example.eu"))
            with app.test_request_context():
                page = search.search(db, user, "wombat", today=date.today())
            print([item.title for item in page.items])
    """, shared)
    # ...until the next start-up (or search, or `search sync`) applies the outbox.
    assert check.returncode == 0, check.stderr
    assert "['Survivor of a crash']" in check.stdout


def test_search_sync_command_applies_pending_entries(shared, app, world, db):
    killed = _run(POST_AND_DIE, shared)
    assert killed.returncode == -signal.SIGKILL
    synced = subprocess.run([sys.executable, "-m", "flask", "--app", "portal", "search", "sync"], cwd=ROOT,
                            env={**os.environ, **shared}, capture_output=True, text=True, timeout=120)
    assert synced.returncode == 0, synced.stderr
    assert "Applied" in synced.stdout


def test_each_host_catches_up_with_its_own_index(tmp_path, shared, app, world):
    other = {**shared, "PORTAL_INSTANCE_PATH": str(tmp_path / "other-host")}
    post = """
        from portal import create_app
        from portal.db import get_session
        from portal.models import Channel, User
        from portal.services import notes
        from sqlalchemy import select
        app = create_app()
        with app.app_context():
            db = get_session()
            channel = db.scalar(select(Channel).where(Channel.slug == "joint-channel"))
            author = db.scalar(select(User).where(User.email == "eva@ec.example.eu"))
            notes.post_note(db, channel, author, "update", {"title": "Posted on host A", "body": "axolotl"})
            db.commit()
    """
    assert _run(post, shared).returncode == 0
    count = """
        from portal import create_app
        from portal.services import search
        app = create_app()
        searcher = search.index_for(app).searcher()
        print(searcher.document_number(key="note:%d") is not None)
    """
    with app.app_context():
        from portal.db import get_session
        note_id = get_session().scalar(select(Note.id).where(Note.title == "Posted on host A"))
    for env in (shared, other):
        result = _run(count % note_id, env)
        assert result.stdout.strip() == "True", result.stderr


CONCURRENT_POSTER = """
    import sys
    from portal import create_app
    from portal.db import get_session
    from portal.models import Channel, User
    from portal.services import notes
    from sqlalchemy import select
    app = create_app()
    worker = int(sys.argv[1])
    with app.app_context():
        db = get_session()
        channel = db.scalar(select(Channel).where(Channel.slug == "joint-channel"))
        author = db.scalar(select(User).where(User.email == "eva@ec.example.eu"))
        for i in range(15):
            notes.post_note(db, channel, author, "update",
                            {"title": f"Concurrent {worker}-{i}", "body": "capybara"})
            db.commit()
    print("ok")
"""


def test_concurrent_writers_never_see_a_lock_error(shared, app, world, caplog):
    workers = [subprocess.Popen([sys.executable, "-c", textwrap.dedent(CONCURRENT_POSTER), str(n)], cwd=ROOT,
                                env={**os.environ, **shared}, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True) for n in range(4)]
    outputs = [worker.communicate(timeout=300) for worker in workers]
    for worker, (out, err) in zip(workers, outputs, strict=True):
        assert worker.returncode == 0 and out.strip() == "ok", err
        assert "LockError" not in err and "not updated now" not in err
    result = _run("""
        from portal import create_app
        from portal.services import search
        app = create_app()
        with app.app_context():
            from portal.db import get_session
            drift = search.verify(get_session(), search.index_for(app))
            print(len(drift.missing), len(drift.extra), len(drift.stale))
    """, shared)
    assert result.stdout.strip() == "0 0 0", result.stderr
