"""Load and fault benchmark: gunicorn on loopback over the bench/pages.py database, a bounded mixed
load from several client processes, then a check that no acknowledged write was lost.

Usage (from the repository root, with the project's virtualenv):

    .venv/bin/python bench/load.py                         # 2 workers, 4 clients, 60 s, full size
    .venv/bin/python bench/load.py --kill-worker           # SIGKILL one worker half-way through
    .venv/bin/python bench/load.py --notes 2000 --replies 20000 --duration 15   # a quick small run
    .venv/bin/python bench/load.py --only thread           # thread pages only (the 300 req/s target)
    .venv/bin/python bench/load.py --profile 300           # first profile 300 thread pages in-process

What it does:
  1. builds (or reuses) the database of bench/pages.py with --notes/--replies (its own build, in
     bench/out/), and copies it to bench/out/load.sqlite3 so the load's writes never touch it;
  2. starts `gunicorn -w WORKERS wsgi:app` on 127.0.0.1 and a free port with its own, empty search
     index directory (the bulk-built notes bypass the outbox, so the index holds the regulation
     index plus whatever the run writes: searches are cheaper than on a fully indexed portal);
  3. starts --clients processes; each signs in as its own official (the real sign-in form with its
     CSRF token), then for --duration seconds sends one request at a time, picked at random by
     --mix weights: a thread page (a random note), a channel page, a search, posting a note,
     posting a reply, editing one of its own notes. Writes carry a unique token in their text;
  4. optionally SIGKILLs one gunicorn worker half-way (--kill-worker); the master starts another;
  5. reports requests/s, p50/p95/p99 (ms) and errors per request type (5xx, refused or broken
     connections, any other unexpected status), the load average before and after;
  6. stops gunicorn and checks every acknowledged write (a 302 to the new or edited note): the note,
     reply or edit is in the database, and in the search index as the server left it. Writes the
     server never acknowledged (cut by the kill) may or may not exist: they are not counted.
     Anything the server committed but had not indexed yet is listed as "pending in the outbox"
     (applied by the next write, search or start-up) and then applied with `search sync`.

Exit status 1 if any 5xx, lost write or unindexed write after the sync.
"""
from __future__ import annotations

import argparse
import http.client
import json
import math
import multiprocessing
import os
import random
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.parse
import uuid
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "out"
PASSWORD = "bench pages passphrase 2026"  # bench/pages.py gives every user this password
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
NOTE_LOCATION = re.compile(r"/notes/(\d+)(?:#reply-(\d+))?$")
KINDS = ("thread", "channel", "search", "note", "reply", "edit")
DEFAULT_MIX = "thread=70,channel=10,search=8,note=4,reply=5,edit=3"
SEARCH_WORDS = ["platform", "interoperability", "ranking", "transparency", "app store", "data access",
                "違法コンテンツ", "kind:case", "DMA Art 6(7)", "self-preferencing", "audit", "透明性"]


# --------------------------------------------------------------------------------------------
# The database and the server
# --------------------------------------------------------------------------------------------


def prepare_database(args) -> tuple[Path, dict]:
    """bench/pages.py's database (built once, reused), copied for this run."""
    source = OUT / f"pages-{args.notes}-{args.replies}.sqlite3" if (args.notes, args.replies) != (50_000, 500_000) \
        else OUT / "pages.sqlite3"
    subprocess.run([sys.executable, str(ROOT / "bench" / "pages.py"), "--build-only", "--db", str(source),
                    "--notes", str(args.notes), "--replies", str(args.replies)], check=True)
    meta = json.loads(source.with_name(source.name + ".json").read_text())
    target = OUT / "load.sqlite3"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{target}{suffix}").unlink(missing_ok=True)
    with sqlite3.connect(source) as original, sqlite3.connect(target) as copy:
        original.backup(copy)
    return target, meta


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def server_environment(db_path: Path, search_dir: Path) -> dict:
    # Four clients on one address write far more than the per-user and per-address limits allow:
    # the load measures the pages, not the limiter's 429s.
    no_limits = {f"PORTAL_RATE_LIMIT_{action}_{scope}": "off"
                 for action in ("SIGN_IN", "POST", "SEARCH") for scope in ("USER", "ADDRESS")}
    return {**os.environ, "PORTAL_DATABASE_URL": f"sqlite:///{db_path}", "PORTAL_SEARCH_DIR": str(search_dir),
            "PORTAL_INSTANCE_PATH": str(OUT / "load-instance"), "PORTAL_SECRET_KEY": "bench-load-secret",
            "PORTAL_BASE_URL": "http://127.0.0.1", **no_limits}


def start_gunicorn(args, env: dict, port: int) -> subprocess.Popen:
    server = subprocess.Popen(
        [str(Path(sys.executable).with_name("gunicorn")), "-w", str(args.workers), "-b", f"127.0.0.1:{port}",
         "--timeout", "60", "--log-level", "warning", "wsgi:app"],
        cwd=ROOT, env=env, start_new_session=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if server.poll() is not None:
            sys.exit(f"gunicorn exited with {server.returncode}")
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            connection.request("GET", "/login")
            if connection.getresponse().status == 200:
                return server
        except OSError:
            time.sleep(0.3)
    server.terminate()
    sys.exit("gunicorn did not answer within 120 s")


def worker_pids(master: int) -> list[int]:
    children = Path(f"/proc/{master}/task/{master}/children")
    return [int(pid) for pid in children.read_text().split()] if children.exists() else []


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a live process, and of its children it has waited for (a killed worker)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return sum(int(value) for value in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def stop_gunicorn(server: subprocess.Popen) -> None:
    if server.poll() is None:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()


# --------------------------------------------------------------------------------------------
# Clients
# --------------------------------------------------------------------------------------------


class Browser:
    """One official's session over a plain socket: the session cookie and the CSRF token.

    HTTP/1.1 by hand, not http.client: its header parsing alone cost the clients half a millisecond
    a request, CPU taken from the server they share the two cores with. A request is a prebuilt
    line and headers; a response is read to the end (the server closes: `Connection: close`) and
    only its status, Location and Set-Cookie are looked at. The CSRF token is read from a page when
    there is none yet; it holds for the whole session (WTF_CSRF_TIME_LIMIT is an hour).
    """

    def __init__(self, port: int):
        self.port = port
        self.cookie = ""
        self.token = ""

    def request(self, method: str, path: str, form: dict | None = None) -> tuple[int, str, str]:
        head = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", "Connection: close"]
        if self.cookie:
            head.append(f"Cookie: {self.cookie}")
        body = b""
        if form is not None:
            body = urllib.parse.urlencode({**form, "csrf_token": self.token}).encode()
            head += ["Content-Type: application/x-www-form-urlencoded", f"Content-Length: {len(body)}"]
        chunks = []
        with socket.create_connection(("127.0.0.1", self.port), timeout=30) as connection:
            connection.sendall("\r\n".join(head).encode() + b"\r\n\r\n" + body)
            while data := connection.recv(262144):
                chunks.append(data)
        # The socket is closed before the response is parsed: gunicorn's sync worker lingers until
        # the client closes (RFC 9112 9.6), so that it is free for the next request at once.
        header, _, payload = b"".join(chunks).partition(b"\r\n\r\n")
        lines = header.decode("latin-1").split("\r\n")
        if not lines[0].startswith("HTTP/1.1 "):
            raise ConnectionError(f"no HTTP response ({len(header)} bytes)")
        status, location = int(lines[0][9:12]), ""
        for line in lines[1:]:
            name, _, value = line.partition(": ")
            name = name.lower()
            if name == "location":
                location = value
            elif name == "set-cookie" and value.startswith("session="):
                self.cookie = value.split(";", 1)[0]
        text = payload.decode("utf-8", "replace")
        if not self.token and (token := CSRF.search(text)):
            self.token = token.group(1)
        return status, location, text

    def sign_in(self, email: str) -> None:
        self.request("GET", "/login")
        status, _, text = self.request("POST", "/login", {"email": email, "password": PASSWORD})
        if status != 302:
            raise RuntimeError(f"sign-in of {email} failed with {status}: {text[:200]}")
        self.token = ""
        self.request("GET", "/")  # a page of the signed-in session, for its CSRF token


def client_process(number: int, args, port: int, plan: dict, deadline: float, queue) -> None:
    rng = random.Random(args.seed * 1000 + number)
    browser = Browser(port)
    browser.sign_in(plan["emails"][number % len(plan["emails"])])
    weights = plan["mix"]
    kinds = [kind for kind in KINDS if weights.get(kind)]
    latencies: dict[str, list[float]] = defaultdict(list)
    errors: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    acknowledged: list[dict] = []
    own_notes: list[int] = []
    while time.time() < deadline:
        kind = rng.choices(kinds, [weights[k] for k in kinds])[0]
        if kind == "edit" and not own_notes:
            kind = "note"
        token = f"bench{uuid.uuid4().hex[:16]}"
        if kind == "thread":
            method, path, form, ok = "GET", f"/notes/{rng.choice(plan['note_ids'])}", None, 200
        elif kind == "channel":
            method, path, form, ok = "GET", f"/channels/{rng.choice(plan['channels'])}", None, 200
        elif kind == "search":
            query = urllib.parse.urlencode({"q": rng.choice(SEARCH_WORDS)})
            method, path, form, ok = "GET", f"/search?{query}", None, 200
        elif kind == "note":
            method, path, ok = "POST", f"/channels/{plan['post_channel']}/new/update", 302
            form = {"title": f"Load test note {token}", "body": f"Posted under load, {token}.", "lang": "en",
                    "marking": "limited"}
        elif kind == "reply":
            method, path, ok = "POST", f"/notes/{rng.choice(plan['note_ids'])}/replies", 302
            form = {"body": f"A reply under load, {token}."}
        else:
            note_id = rng.choice(own_notes)
            method, path, ok = "POST", f"/notes/{note_id}/edit", 302
            form = {"title": f"Load test note edited {token}", "body": f"Edited under load, {token}.",
                    "lang": "en", "marking": "limited"}
        started = time.perf_counter()
        try:
            status, location, _ = browser.request(method, path, form)
        except OSError as error:
            errors[kind][f"connection: {type(error).__name__}"] += 1
            continue
        latencies[kind].append(time.perf_counter() - started)
        if status != ok:
            errors[kind]["5xx" if status >= 500 else str(status)] += 1
            continue
        if method == "POST":
            match = NOTE_LOCATION.search(location)
            if not match:
                errors[kind][f"unexpected redirect {location[:60]}"] += 1
                continue
            note_id, reply_id = int(match.group(1)), match.group(2)
            if kind == "note":
                own_notes.append(note_id)
            acknowledged.append({"kind": kind, "note_id": note_id, "reply_id": int(reply_id) if reply_id else None,
                                 "token": token, "at": time.time()})
    queue.put({"latencies": dict(latencies), "errors": {k: dict(v) for k, v in errors.items()},
               "acknowledged": acknowledged, "cpu": time.process_time()})


def load_plan(db_path: Path, meta: dict, args) -> dict:
    """Who signs in, which notes and channels they read, from the database itself."""
    with sqlite3.connect(db_path) as con:
        emails = [row[0] for row in con.execute(
            "SELECT users.email FROM users JOIN organisations ON organisations.id = users.organisation_id "
            "WHERE users.role = 'member' AND users.is_active ORDER BY organisations.side, users.id")]
        note_ids = [row[0] for row in con.execute(
            "SELECT notes.id FROM notes JOIN channels ON channels.id = notes.channel_id "
            "WHERE channels.visibility = 'joint' AND notes.deleted_at IS NULL AND NOT channels.is_archived "
            "AND notes.id != ? ORDER BY notes.id", (meta["thread_note_id"],))]
        channels = [row[0] for row in con.execute(
            "SELECT slug FROM channels WHERE visibility = 'joint' ORDER BY id")]
    mix = {kind: 0.0 for kind in KINDS}
    for part in args.mix.split(","):
        kind, _, weight = part.partition("=")
        if kind.strip() not in KINDS:
            sys.exit(f"--mix: unknown request type {kind!r} (one of {', '.join(KINDS)})")
        mix[kind.strip()] = float(weight)
    if args.only:
        mix = {kind: (1.0 if kind == args.only else 0.0) for kind in KINDS}
    # Interleave EU and JP officials so that several clients are not all on one side.
    half = len(emails) // 2
    interleaved = [email for pair in zip(emails[:half], emails[half:]) for email in pair] or emails
    return {"emails": interleaved, "note_ids": note_ids, "channels": channels,
            "post_channel": meta["channel_slug"], "mix": mix}


# --------------------------------------------------------------------------------------------
# Report and check
# --------------------------------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)] if ordered else float("nan")


def report(results: list[dict], seconds: float) -> tuple[int, int]:
    latencies: dict[str, list[float]] = defaultdict(list)
    errors: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for result in results:
        for kind, values in result["latencies"].items():
            latencies[kind] += values
        for kind, counts in result["errors"].items():
            for label, n in counts.items():
                errors[kind][label] += n
    print(f"\n{'type':<9}{'requests':>9}{'req/s':>9}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}  errors")
    total = server_errors = 0
    for kind in KINDS:
        values = latencies.get(kind, [])
        if not values and not errors.get(kind):
            continue
        total += len(values)
        server_errors += errors[kind].get("5xx", 0)
        shown = ", ".join(f"{label}: {n}" for label, n in sorted(errors[kind].items())) or "0"
        print(f"{kind:<9}{len(values):>9}{len(values) / seconds:>9.1f}{percentile(values, .5) * 1000:>9.1f}"
              f"{percentile(values, .95) * 1000:>9.1f}{percentile(values, .99) * 1000:>9.1f}  {shown}")
    other = sum(n for kind in errors for label, n in errors[kind].items() if label != "5xx")
    print(f"{'all':<9}{total:>9}{total / seconds:>9.1f}  5xx: {server_errors}, other errors: {other}")
    return server_errors, other


def check_writes(db_path: Path, search_dir: Path, env: dict, acknowledged: list[dict]) -> int:
    """Every acknowledged write in the database and in the index; returns how many are missing."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from portal.search.index import SearchIndex

    notes = [w for w in acknowledged if w["kind"] == "note"]
    replies = [w for w in acknowledged if w["kind"] == "reply"]
    # The last acknowledged edit of each note is what the note must say now (each client edits only
    # its own notes, one request at a time, so acknowledgements are in order per note).
    last_edit: dict[int, dict] = {}
    for write in sorted((w for w in acknowledged if w["kind"] == "edit"), key=lambda w: w["at"]):
        last_edit[write["note_id"]] = write
    missing_db: list[str] = []
    with sqlite3.connect(db_path) as con:
        for write in notes:
            row = con.execute("SELECT title, body FROM notes WHERE id = ?", (write["note_id"],)).fetchone()
            # An edited note's title holds the edit's token instead (checked below).
            if row is None or (write["token"] not in row[0] and write["note_id"] not in last_edit):
                missing_db.append(f"note {write['note_id']}")
        for write in replies:
            row = con.execute("SELECT body FROM replies WHERE id = ?", (write["reply_id"],)).fetchone()
            if row is None or write["token"] not in row[0]:
                missing_db.append(f"reply {write['reply_id']}")
        for note_id, write in last_edit.items():
            row = con.execute("SELECT body FROM notes WHERE id = ?", (note_id,)).fetchone()
            if row is None or write["token"] not in row[0]:
                missing_db.append(f"edit of note {note_id}")

    def unindexed() -> list[str]:
        index = SearchIndex(str(search_dir))
        stored = {fields["key"]: fields for fields in index.searcher().all_stored_fields()}
        absent = []
        for write in notes:
            key = f"note:{write['note_id']}"
            if key not in stored:
                absent.append(key)
        for write in replies:
            key = f"reply:{write['reply_id']}"
            if key not in stored or write["token"] not in stored[key].get("body", ""):
                absent.append(key)
        for note_id, write in last_edit.items():
            key = f"note:{note_id}"
            if key in stored and write["token"] not in stored[key].get("body", ""):
                absent.append(f"{key} (edit)")
        return absent

    print(f"\nAcknowledged writes: {len(notes)} notes, {len(replies)} replies, "
          f"{sum(1 for w in acknowledged if w['kind'] == 'edit')} edits (of {len(last_edit)} notes)")
    print(f"Missing from the database: {len(missing_db)}" + (f" ({', '.join(missing_db[:10])} …)" if missing_db else ""))
    left = unindexed()
    print(f"Not in the index as the server left it: {len(left)}"
          + (f" ({', '.join(left[:10])}) — pending in the outbox; applying with `search sync`" if left else ""))
    if left:
        subprocess.run([sys.executable, "-m", "flask", "--app", "portal", "search", "sync"], cwd=ROOT, env=env,
                       check=True)
        left = unindexed()
        print(f"Not in the index after `search sync`: {len(left)}")
    return len(missing_db) + len(left)


def profile_thread_pages(db_path: Path, plan: dict, requests: int) -> None:
    """cProfile of thread pages served in-process (one worker's work without HTTP): where the time goes."""
    import cProfile
    import gc
    import io
    import pstats

    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from portal import create_app

    app = create_app({"INSTANCE_PATH": str(OUT / "load-instance"), "DATABASE_URL": f"sqlite:///{db_path}",
                      "SECRET_KEY": "bench-load-secret", "WTF_CSRF_ENABLED": False,
                      "SEARCH_DIR": str(OUT / "load-search")})
    client = app.test_client()
    if client.post("/login", data={"email": plan["emails"][0], "password": PASSWORD}).status_code != 302:
        sys.exit("profile: sign-in failed")
    rng = random.Random(1)
    paths = [f"/notes/{rng.choice(plan['note_ids'])}" for _ in range(requests + 20)]
    for path in paths[:20]:
        client.get(path)
    gc.freeze()  # as wsgi.py does
    profiler = cProfile.Profile()
    wall, cpu = time.perf_counter(), time.process_time()
    profiler.enable()
    for path in paths[20:]:
        client.get(path)
    profiler.disable()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    print(f"\nIn-process thread pages: {requests} requests, {wall / requests * 1000:.1f} ms wall and "
          f"{cpu / requests * 1000:.1f} ms CPU each (so at most {1000 / (cpu / requests * 1000):.0f} req/s per "
          f"busy CPU before HTTP, gunicorn and clients take their share)")
    text = io.StringIO()
    pstats.Stats(profiler, stream=text).sort_stats("cumulative").print_stats(40)
    (OUT / "load-profile.txt").write_text(text.getvalue())
    print(f"Profile (cumulative, top 40): {OUT / 'load-profile.txt'}")


# --------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--notes", type=int, default=50_000)
    parser.add_argument("--replies", type=int, default=500_000)
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    parser.add_argument("--clients", type=int, default=4, help="client processes, one request in flight each")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of load")
    parser.add_argument("--mix", default=DEFAULT_MIX, help=f"request type weights (default {DEFAULT_MIX})")
    parser.add_argument("--only", choices=KINDS, help="send only this request type")
    parser.add_argument("--kill-worker", action="store_true", help="SIGKILL one gunicorn worker half-way")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--profile", type=int, default=0, metavar="N",
                        help="first profile N thread pages in-process (cProfile, bench/out/load-profile.txt)")
    args = parser.parse_args(argv)

    db_path, meta = prepare_database(args)
    search_dir = OUT / "load-search"
    shutil.rmtree(search_dir, ignore_errors=True)
    env = server_environment(db_path, search_dir)
    plan = load_plan(db_path, meta, args)
    if args.profile:
        profile_thread_pages(db_path, plan, args.profile)
    port = free_port()
    print(f"Load: {args.clients} clients on gunicorn -w {args.workers} at 127.0.0.1:{port} for {args.duration:.0f} s "
          f"over {meta['notes']} notes / {meta['replies']} replies; mix {plan['mix']}")
    print(f"Load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())} ({os.cpu_count()} CPUs)")
    server = start_gunicorn(args, env, port)
    try:
        queue = multiprocessing.Queue()
        server_cpu_before = sum(cpu_seconds(pid) for pid in [server.pid, *worker_pids(server.pid)])
        deadline = time.time() + args.duration
        started = time.time()
        clients = [multiprocessing.Process(target=client_process, args=(n, args, port, plan, deadline, queue))
                   for n in range(args.clients)]
        for client in clients:
            client.start()
        if args.kill_worker:
            time.sleep(args.duration / 2)
            victims = worker_pids(server.pid)
            if not victims:
                sys.exit("no gunicorn worker found to kill")
            os.kill(victims[0], signal.SIGKILL)
            print(f"SIGKILLed worker {victims[0]} at {time.time() - started:.1f} s; workers now "
                  f"{worker_pids(server.pid)}", flush=True)
        results = [queue.get(timeout=args.duration + 120) for _ in clients]
        for client in clients:
            client.join()
        elapsed = time.time() - started
        load_after = os.getloadavg()
        server_cpu = sum(cpu_seconds(pid) for pid in [server.pid, *worker_pids(server.pid)]) - server_cpu_before
        if args.kill_worker:
            print(f"Workers at the end: {worker_pids(server.pid)}")
    finally:
        stop_gunicorn(server)
    server_errors, _ = report(results, elapsed)
    print(f"Load average after: {' '.join(f'{x:.2f}' for x in load_after)}")
    # Where the two CPUs went: the server's share bounds its throughput, the clients' is taken from it.
    served = sum(len(v) for r in results for v in r["latencies"].values())
    client_cpu = sum(r["cpu"] for r in results)
    print(f"CPU during the run: gunicorn {server_cpu:.1f} s ({server_cpu / max(served, 1) * 1000:.2f} ms per request), "
          f"clients {client_cpu:.1f} s ({client_cpu / max(served, 1) * 1000:.2f} ms per request), "
          f"of {elapsed * (os.cpu_count() or 1):.0f} CPU-seconds")
    lost = check_writes(db_path, search_dir, env, [w for r in results for w in r["acknowledged"]])
    if server_errors or lost:
        print(f"FAILED: {server_errors} server errors, {lost} lost or unindexed writes")
        sys.exit(1)
    print("OK: no server errors, every acknowledged write is in the database and the index.")


if __name__ == "__main__":
    main()
