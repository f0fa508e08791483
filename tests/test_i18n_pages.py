"""Pages in the reader's language and time zone: Japanese for an official who prefers it, English otherwise."""
from __future__ import annotations

import html
import re
from datetime import datetime, time, timezone
from zoneinfo import ZoneInfo

import pytest

from portal.services import audit, notes, replies
from tests.conftest import login

# Interface strings that must not survive on a page shown in Japanese. Compared with whole text
# nodes, so user content that merely contains one of these words does not count.
ENGLISH_LABELS = {
    "Answer by", "Addressed to", "State", "Status", "Reply", "Edit", "Delete", "Post reply", "Accept as answer",
    "Decline to answer", "Grounds for declining", "Accepted answer", "Search", "Kind", "Channel", "Topic", "Side",
    "Language", "Question state", "Order", "any", "most relevant", "newest first", "Posted after", "Refine",
    "Atom feed", "New update", "New case", "New question", "All", "updates", "cases", "questions", "Not found",
    "Back to the dashboard", "Users and invitations", "Organisations", "Channels", "Deleted notes", "Save", "Add",
    "Name", "Role", "E-mail", "Organisation", "Send invitation", "Accounts", "Open invitations", "Create channel",
    "Visibility", "Members and moderators", "Remove", "How to search", "the exact phrase", "either word",
    "Back to search", "Type", "Finds", "Sign out", "Dashboard", "Settings", "question", "update", "case",
    "open", "limited", "LIMITED", "member", "moderator", "admin", "joint", "private", "archived", "active",
    "set up", "not set up", "Reset",
}
ENGLISH_ARIA = ("Replies", "Pages", "Refine", "Filter by kind", "Administration", "Main")


def _text_nodes(page: str) -> set[str]:
    return {html.unescape(node).strip() for node in re.findall(r">([^<>]+)<", page)} - {""}


def _interface(page: str) -> str:
    """The page without search snippets, whose highlighting splits user text into single words."""
    return re.sub(r'<p class="snippet">.*?</p>', "", page, flags=re.S)


def _text(page: str) -> str:
    """The page as a reader sees it: tags removed, spaces collapsed."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page)).split())


def _get(client, path: str) -> str:
    response = client.get(path)
    assert response.status_code in (200, 404), (path, response.status_code)
    return response.get_data(as_text=True)


def _assert_japanese(page: str, path: str) -> None:
    assert '<html lang="ja">' in page, path
    left = _text_nodes(_interface(page)) & ENGLISH_LABELS
    assert not left, f"{path} still shows {sorted(left)}"
    for label in ENGLISH_ARIA:
        assert f'aria-label="{label}"' not in page, (path, label)


def _pages(world, own):
    """(path, Japanese labels, English labels, as an administrator?) for each page checked.

    `own` is a channel whose note and reply the signed-in member wrote, for the author's pages.
    """
    joint_note = world.notes["joint"].id
    note, reply = world.notes[own].id, world.replies[own].id
    return [
        (f"/notes/{joint_note}", ["回答期限", "宛先", "返信1件", "返信を投稿", "この投稿への返信（Markdown）", "質問"],
         ["Answer by", "Addressed to", "1 reply", "Post reply", "Reply to this note (Markdown)", "question"], False),
        (f"/notes/{joint_note}/history", ["変更履歴", "第1版"], ["History", "Revision 1"], False),
        (f"/notes/{note}/edit", ["質問の編集", "変更を保存", "キャンセル", "トピック"],
         ["Edit question", "Save changes", "Cancel", "Topics"], False),
        (f"/notes/{note}/replies/{reply}", ["返信", "返信を投稿"], ["Reply", "Post reply"], False),
        (f"/replies/{reply}/edit", ["返信の編集", "スレッドに戻る", "本文（Markdown）"],
         ["Edit reply", "Back to the thread", "Text (Markdown)"], False),
        (f"/replies/{reply}/history", ["返信の変更履歴", "第1版"], ["Reply history", "Revision 1"], False),
        ("/channels", ["チャンネル", "日EU共同", "アーカイブ済み", "1件の投稿"],
         ["Channels", "joint", "archived", "1 note"], False),
        ("/channels/joint-channel", ["新規報告", "新規案件", "新規質問", "すべて", "報告", "案件", "Atomフィード"],
         ["New update", "New case", "New question", "All", "updates", "cases", "Atom feed"], False),
        ("/channels/joint-channel/new/question", ["新規質問", "件名", "取扱区分", "関係者限り", "回答期限", "質問を投稿"],
         ["New question", "Title", "Handling marking", "limited", "Answer needed by", "Post question"], False),
        ("/search?q=joint", ["検索", "種類", "関連度順", "絞り込み", "質問", "返信", "すべて"],
         ["Search", "Kind", "most relevant", "Refine", "question", "reply", "any"], False),
        ("/search/help", ["検索の方法", "語句に完全一致するもの", "いずれかの語を含むもの", "検索に戻る"],
         ["How to search", "the exact phrase", "either word", "Back to search"], False),
        ("/regulations", ["法令一覧"], ["Regulation index"], False),
        ("/regulations/dsa", ["公式文書", "引用している投稿", "第16条"], ["Official text", "Notes citing it", "Art. 16"], False),
        ("/notes/999999999", ["ページが見つかりません", "ダッシュボードに戻る"], ["Not found", "Back to the dashboard"], False),
        ("/admin/users", ["ユーザーと招待", "職員の招待", "招待を送信", "アカウント", "管理者", "有効"],
         ["Users and invitations", "Invite an official", "Send invitation", "Accounts", "admin", "active"], True),
        ("/admin/organisations", ["組織の追加", "スラッグ", "名前"], ["Add an organisation", "Slug", "Name"], True),
        ("/admin/channels", ["チャンネルの作成", "公開範囲", "メンバー限定"], ["Create a channel", "Visibility", "private"], True),
        ("/admin/channels/private-channel", ["メンバーとモデレーター", "モデレーター", "チャンネルをアーカイブ（閲覧のみ）"],
         ["Members and moderators", "Moderator", "Archive channel (read-only)"], True),
        ("/admin/deleted", ["削除された投稿", "削除された投稿はありません。"], ["Deleted notes", "No deleted notes."], True),
    ]


@pytest.mark.parametrize("lang", ["ja", "en"])
def test_pages_in_the_readers_language(client, world, lang):
    member = world.jp_member if lang == "ja" else world.eu_member
    admin = world.jp_admin if lang == "ja" else world.eu_admin
    for signed_in, as_admin in ((member, False), (admin, True)):
        login(client, signed_in)
        for path, japanese, english, admin_page in _pages(world, "private" if lang == "ja" else "joint"):
            if admin_page != as_admin:
                continue
            page = _get(client, path)
            if lang == "ja":
                _assert_japanese(page, path)
            else:
                assert '<html lang="en">' in page, path
            nodes, text = _text_nodes(page), _text(page)
            for label in (japanese if lang == "ja" else english):
                assert label in nodes or label in text or f'aria-label="{label}"' in page, f"{path} lacks {label!r}"
            if lang == "en":
                assert not set(japanese) & nodes, path
        client.post("/logout")


def test_reply_actions_are_translated(client, world):
    # The private question is the Japanese member's: they may edit, delete and accept its reply.
    login(client, world.jp_member)
    page = _get(client, f"/notes/{world.notes['private'].id}")
    nodes = _text_nodes(page)
    assert {"返信", "編集", "削除", "回答として承認"} <= nodes
    _assert_japanese(page, "private note")


def test_note_times_are_in_the_readers_zone(client, world):
    note, reply = world.notes["joint"], world.replies["joint"]
    for user, zone, fmt in ((world.jp_member, "Asia/Tokyo", "{d.year}年{d.month}月{d.day}日 {d:%H:%M} {d:%Z}"),
                            (world.eu_member, "Europe/Brussels", "{d:%Y-%m-%d %H:%M} {d:%Z}")):
        login(client, user)
        page = _get(client, f"/notes/{note.id}")
        for moment in (note.created_at, reply.created_at):
            shown = fmt.format(d=moment.replace(tzinfo=timezone.utc).astimezone(ZoneInfo(zone)))
            assert f'<time datetime="{moment.isoformat(timespec="seconds")}Z">{shown}</time>' in page, user.email
        assert " UTC</time>" not in page
        client.post("/logout")


def test_answer_by_shows_the_end_on_both_sides(client, world):
    note = world.notes["joint"]  # asked by the EU side
    end = datetime.combine(note.answer_by, time(23, 59), ZoneInfo("Europe/Brussels"))
    tokyo = end.astimezone(ZoneInfo("Asia/Tokyo"))
    login(client, world.eu_member)
    english = _text(_get(client, f"/notes/{note.id}"))
    assert (f"Answer by {note.answer_by.isoformat()} — EU 23:59 {end:%Z} · JP {tokyo:%Y-%m-%d %H:%M %Z}"
            in english)
    client.post("/logout")
    login(client, world.jp_member)
    japanese = _text(_get(client, f"/notes/{note.id}"))
    due = note.answer_by
    assert (f"回答期限 {due.year}年{due.month}月{due.day}日 — EU 23:59 {end:%Z} · "
            f"JP {tokyo.year}年{tokyo.month}月{tokyo.day}日 {tokyo:%H:%M} JST") in japanese


def test_a_tokyo_question_ends_first_in_tokyo(client, world, db):
    # Asked by the Japanese side: Tokyo's end comes first, and Brussels sees it the same afternoon.
    note = world.notes["private"]
    end = datetime.combine(note.answer_by, time(23, 59), ZoneInfo("Asia/Tokyo"))
    brussels = end.astimezone(ZoneInfo("Europe/Brussels"))
    login(client, world.eu_member)
    text = _text(_get(client, f"/notes/{note.id}"))
    assert f"— JP 23:59 JST · EU {brussels:%H:%M %Z}" in text


def test_status_labels_leave_stored_values_alone(client, world, db):
    case = notes.post_note(db, world.jp, world.jp_member, "case", {
        "title": "Fee review", "body": "Text", "lang": "en", "case_status": "preliminary_findings",
        "marking": "sensitive"})
    db.commit()
    login(client, world.jp_member)
    page = _get(client, f"/notes/{case.id}")
    assert "暫定的見解" in _text_nodes(page) and "preliminary findings" not in page
    # The form still posts the stored value, whatever the reader sees.
    assert '<option value="preliminary_findings" selected>暫定的見解</option>' in page
    assert 'class="badge case-preliminary_findings"' in page


def test_search_help_keeps_the_query_language(client, world):
    login(client, world.jp_member)
    page = _get(client, "/search/help")
    for syntax in ('"notice and action"', "kind:case", "is:overdue", "side:eu", "-draft", "DSA OR DMA"):
        assert syntax in page
    assert "同じ条件に複数の値を指定すると" in page


def test_history_names_the_changed_fields_in_the_readers_language(client, world):
    note = world.notes["private"]
    login(client, world.jp_member)
    response = client.post(f"/notes/{note.id}/edit", data={
        "title": "件名を変えた質問", "body": note.body, "lang": "en", "marking": "sensitive", "topics": ["dsa"],
        "articles": "DSA Art. 16", "answer_by": note.answer_by.isoformat()})
    assert response.status_code == 302, response.get_data(as_text=True)[:1000]
    page = _get(client, f"/notes/{note.id}/history")
    assert "変更箇所：件名、取扱区分" in _text_nodes(page)
    _assert_japanese(page, "history")


def test_account_pages_in_japanese(client, world):
    # Added after the first translation pass: each must show its own Japanese, not the English it had.
    login(client, world.jp_member)
    expected = {
        "/notifications": ["<h1>通知</h1>"],
        "/subscriptions": ["<h1>購読</h1>", "<td>閲覧できるすべて</td>", "<h2>購読中の対象</h2>", "<h2>Atomフィード</h2>", ">購読</button>"],
        "/account/sessions": ["<h1>ログイン中の端末</h1>", "<td>このブラウザー</td>"],
        "/account/tokens": ["<h1>APIトークン</h1>", ">トークンを作成</button>", '<label for="scope">権限</label>'],
        "/account/two-factor": ["<h1>二段階認証"],
        "/digest": ["<h1>マイダイジェスト</h1>", ">すべて既読にする</button>", ">購読の管理</a>"],
    }
    for path, fragments in expected.items():
        response = client.get(path)
        page = response.get_data(as_text=True)
        assert response.status_code == 200, path
        _assert_japanese(page, path)
        for fragment in fragments:
            assert fragment in page, (path, fragment)


def test_pagers_name_what_they_page_through(app, client, db, world):
    """"Newer"/"Older" are one word in English, but a channel pages posts, the audit log records and the
    notifications page notifications: Japanese says which (pgettext)."""
    app.config["PAGE_SIZE"] = 3
    for i in range(31):
        notes.post_note(db, world.joint, world.eu_member, "update", {"title": f"Update {i}", "body": "b"})
        audit.record(db, world.eu_member, "note.edit", "note", 1000 + i, revision=i)
    for i in range(20):
        audit.record(db, world.eu_member, "note.edit", "note", 2000 + i, revision=i)
    for i in range(4):
        replies.post_reply(db, world.notes["private"], world.eu_member, f"Reply {i}")
    db.commit()
    login(client, world.jp_admin)
    pages = {"/channels/joint-channel": ("以前の投稿", "新しい投稿"), "/admin/audit": ("古い記録", "新しい記録")}
    for path, (older, newer) in pages.items():
        assert f">{older}</a>" in _get(client, path) and f">{newer}</a>" in _get(client, f"{path}?page=2"), path
    client.post("/logout")
    login(client, world.jp_member)
    assert "以前の通知 →</a>" in _get(client, "/notifications")
    assert "← 新しい通知</a>" in _get(client, "/notifications?page=2")


def test_service_messages_found_late_are_in_japanese(app, client, world):
    """Messages that services once built as plain English strings, as a Japanese official meets them."""
    login(client, world.jp_admin)
    audit_page = client.get("/admin/audit?since=31/12/2026&target=note:x").get_data(as_text=True)
    assert "日付は YYYY-MM-DD の形式で入力してください。" in audit_page and "対象は種類（note）" in audit_page
    users = _get(client, "/admin/users")
    assert "設定済み" in users and "未設定" in users and ">リセット</button>" in users
    added = client.post("/admin/channels/private-channel/members", data={"email": "nobody@jftc.example.jp"},
                        follow_redirects=True).get_data(as_text=True)
    assert "ユーザー「nobody@jftc.example.jp」は見つかりません。" in added
    client.post("/logout")
    login(client, world.jp_member)
    response = client.post(f"/channels/{world.joint.slug}/new/question", data={
        "title": "期限の書き方", "body": "本文", "lang": "ja", "marking": "limited", "answer_by": "来週"})
    assert response.status_code == 400
    assert "「来週」は日付として認識できません。" in response.get_data(as_text=True)
    app.config["RATE_LIMIT_SEARCH_USER"] = "1/86400"
    assert "kind: には update、case、question のいずれかを指定してください" in _get(client, "/search?q=kind:nonsense")
    limited = client.get("/search?q=joint")
    assert limited.status_code == 429
    assert re.search(r"短時間の検索が多すぎます。\d+(時間|分|秒)後にもう一度お試しください。", limited.get_data(as_text=True))


def test_today_is_the_readers_date_not_the_servers(app, db, client, world):
    """Kiritimati (UTC+14) and Pago Pago (UTC−11) are always on different dates: each reader's digest
    page opens on their own today, whatever the server's clock says."""
    for zone in ("Pacific/Kiritimati", "Pacific/Pago_Pago"):
        world.eu_member.time_zone = zone
        db.commit()
        login(client, world.eu_member)
        before = datetime.now(ZoneInfo(zone)).date()
        page = _get(client, "/digest?period=daily")
        after = datetime.now(ZoneInfo(zone)).date()
        shown = re.search(r'<input type="hidden" name="date" value="([0-9-]+)">', page).group(1)
        assert shown in (before.isoformat(), after.isoformat()), zone
        client.post("/logout")
