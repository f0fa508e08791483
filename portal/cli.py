"""`flask --app portal …` commands. Each calls the same service function as the web."""
from __future__ import annotations

import json
import sys
from datetime import UTC, date, datetime
from pathlib import Path

import click
from flask import Flask, current_app, url_for
from flask.cli import AppGroup, with_appcontext

from portal import db
from portal.errors import DomainError
from portal.i18n import LANGUAGES
from portal.models.digests import FREQUENCIES
from portal.models.tokens import SCOPES
from portal.services import accounts, channels, content, demo, importer
from portal.services import backup, digests, export, subscriptions, tokens
from portal.services import notifications as notifications_service
from portal.services import search as search_service

orgs_cli = AppGroup("orgs", help="Organisations.")
users_cli = AppGroup("users", help="Accounts and invitations.")
channels_cli = AppGroup("channels", help="Channels and membership.")
notes_cli = AppGroup("notes", help="Notes.")
search_cli = AppGroup("search", help="The full-text index.")
notifications_cli = AppGroup("notifications", help="In-app notifications.")


def register(app: Flask) -> None:
    for command in (init, demo_command, orgs_cli, users_cli, channels_cli, notes_cli, search_cli,
                    subscriptions_cli, digests_cli, tokens_cli, notifications_cli):
        app.cli.add_command(command)
    register_operations(app)


def _fail(error: DomainError) -> None:
    raise click.ClickException(str(error))


def _commit_or_fail(work):
    """Run work(session) and commit; a domain error becomes a clear message and a non-zero exit."""
    session = db.get_session()
    try:
        result = work(session)
    except DomainError as error:
        session.rollback()
        _fail(error)
    session.commit()
    return result


@click.command("init")
@with_appcontext
def init() -> None:
    """Create or upgrade the database schema and load content/ (safe to run again)."""
    db.migrate(db.engine())
    report = _commit_or_fail(content.load_content)
    click.echo(f"Database is up to date; loaded {report.topics} topics, {report.acts} acts, "
               f"{report.articles} articles.")


@click.command("demo")
@with_appcontext
def demo_command() -> None:
    """Load the demo organisations, users, channels, notes and replies (safe to run again)."""
    report = _commit_or_fail(lambda session: demo.load_demo(session, date.today()))
    click.echo(f"Demo data: {report.notes_created} notes and {report.replies_created} replies added.")
    click.echo(f"Demo sign-ins (password for all: {demo.DEMO_PASSWORD}):")
    for user in report.users:
        click.echo(f"  {user.email:<40} {user.role:<10} {user.organisation.name} ({user.side.upper()})")


@orgs_cli.command("create")
@click.argument("slug")
@click.option("--name", required=True)
@click.option("--side", required=True, type=click.Choice(["eu", "jp"]))
def orgs_create(slug: str, name: str, side: str) -> None:
    """Create an organisation."""
    organisation = _commit_or_fail(
        lambda session: accounts.create_organisation(session, slug=slug, name=name, side=side)
    )
    click.echo(f"Created organisation {organisation.slug} ({organisation.side.upper()}).")


def _link(session, user) -> str:
    return accounts.invite(session, user, actor=None)


@users_cli.command("create")
@click.argument("email")
@click.option("--name", required=True)
@click.option("--org", "org_slug", required=True, help="Organisation slug.")
@click.option("--role", default="member", type=click.Choice(["member", "moderator", "admin"]))
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@click.option("--lang", type=click.Choice(LANGUAGES),
              help="Language of a new account and its invitation; by default its side's (ja for jp).")
def users_create(email: str, name: str, org_slug: str, role: str, password_stdin: bool, lang: str | None) -> None:
    """Create an account; without --password-stdin, print an invitation link."""
    password = sys.stdin.readline().rstrip("\n") if password_stdin else None

    def work(session):
        organisation = accounts.organisation_by_slug(session, org_slug)
        user = accounts.create_user(session, email=email, name=name, organisation=organisation,
                                    role=role, password=password, lang=lang)
        return user, (None if password_stdin else _link(session, user))

    user, link = _commit_or_fail(work)
    click.echo(f"Created {user.email} ({user.role}, {user.organisation.slug}).")
    if link:
        click.echo(f"Invitation link (valid {current_app.config['INVITATION_DAYS']} days, single use): {link}")


@users_cli.command("invite")
@click.argument("email")
@click.option("--name", help="Create the account with this name if it does not exist.")
@click.option("--org", "org_slug", help="Organisation slug, for a new account.")
@click.option("--role", default="member", type=click.Choice(["member", "moderator", "admin"]))
@click.option("--send/--no-send", default=True, help="Also e-mail the link.")
@click.option("--lang", type=click.Choice(LANGUAGES),
              help="Language of a new account and its invitation; by default its side's (ja for jp).")
def users_invite(email: str, name: str | None, org_slug: str | None, role: str, send: bool,
                 lang: str | None) -> None:
    """Issue a new invitation link for a pending account (creating it if --name and --org are given)."""
    from portal import mail

    def work(session):
        try:
            user = accounts.user_by_email(session, email)
        except DomainError:
            if not (name and org_slug):
                raise
            organisation = accounts.organisation_by_slug(session, org_slug)
            user = accounts.create_user(session, email=email, name=name, organisation=organisation, role=role,
                                        lang=lang)
        link = _link(session, user)
        if send:
            mail.send_invitation(user, link, inviter=None)
        return link

    click.echo(f"Invitation link: {_commit_or_fail(work)}")


@channels_cli.command("create")
@click.argument("slug")
@click.option("--name", required=True, help="English name.")
@click.option("--name-ja", default="", help="Japanese name.")
@click.option("--description", default="")
@click.option("--description-ja", default="")
@click.option("--visibility", required=True, type=click.Choice(["joint", "eu", "jp", "private"]))
def channels_create(slug, name, name_ja, description, description_ja, visibility) -> None:
    """Create a channel."""
    data = {"slug": slug, "name_en": name, "name_ja": name_ja, "description_en": description,
            "description_ja": description_ja, "visibility": visibility}
    channel = _commit_or_fail(lambda session: channels.create_channel(session, data, actor=None))
    click.echo(f"Created channel {channel.slug} ({channel.visibility}).")


@channels_cli.command("add-member")
@click.argument("slug")
@click.argument("email")
@click.option("--moderator", is_flag=True, help="Make the member a moderator of the channel.")
def channels_add_member(slug: str, email: str, moderator: bool) -> None:
    """Add a named member to a channel (required for private channels)."""
    _commit_or_fail(lambda session: channels.add_member(
        session, channels.channel_by_slug(session, slug), accounts.user_by_email(session, email),
        is_moderator=moderator, actor=None))
    click.echo(f"{email} is now a {'moderator' if moderator else 'member'} of {slug}.")


@notes_cli.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--channel", "channel_slug", required=True)
@click.option("--author", "author_email", required=True)
@click.option("--json", "as_json", is_flag=True, help="Print the notes written as a JSON array.")
def notes_import(file: Path, channel_slug: str, author_email: str, as_json: bool) -> None:
    """Import notes from JSON Lines: {"id", "title", "body", "lang"} per line; re-import updates."""
    session = db.get_session()
    try:
        channel = channels.channel_by_slug(session, channel_slug)
        author = accounts.user_by_email(session, author_email)
    except DomainError as error:
        _fail(error)
    with file.open(encoding="utf-8") as counted:
        total = sum(1 for _ in counted)
    with file.open(encoding="utf-8") as lines, click.progressbar(
        length=total, label=f"Importing {file.name}", file=sys.stderr
    ) as bar:
        try:
            result = importer.import_notes(
                session, lines, channel=channel, author=author, progress=lambda _n: bar.update(1)
            )
        except DomainError as error:
            session.rollback()
            _fail(error)
    session.commit()
    for number, message in result.errors:
        click.echo(f"{file}:{number}: skipped: {message}", err=True)
    click.echo(f"Imported {result.created} new and {result.updated} updated notes; "
               f"{len(result.errors)} lines skipped.", err=as_json)
    if as_json:
        with current_app.test_request_context(base_url=current_app.config["BASE_URL"]):
            rows = [{"id": note.id, "external_id": note.external_id,
                     "url": url_for("notes.show", note_id=note.id, _external=True)} for note in result.written]
        click.echo(json.dumps(rows, ensure_ascii=False))
    if result.errors:
        sys.exit(1)


@search_cli.command("sync")
def search_sync() -> None:
    """Apply pending outbox entries to this host's index and merge its small segments (run it
    every minute or so from cron or a systemd timer)."""
    applied = search_service.sync(current_app._get_current_object(), merge=True)
    click.echo(f"Applied {applied} pending changes; the index is up to date.")


@search_cli.command("rebuild")
def search_rebuild() -> None:
    """Rebuild this host's index from the database."""
    session = db.get_session()
    index = search_service.index_for(current_app)
    total = search_service.count_documents(session)
    with click.progressbar(length=total, label="Indexing", file=sys.stderr) as bar:
        count = search_service.rebuild(session, index, progress=bar.update)
    click.echo(f"Indexed {count} documents.")


@search_cli.command("verify")
@click.option("--fix", is_flag=True, help="Repair what differs.")
def search_verify(fix: bool) -> None:
    """Report (and with --fix repair) drift between the database and the index."""
    search_service.sync(current_app._get_current_object())
    drift = search_service.verify(db.get_session(), search_service.index_for(current_app), fix=fix)
    for label, keys in (("missing", drift.missing), ("extra", drift.extra), ("stale", drift.stale),
                        ("duplicated", drift.duplicate)):
        if keys:
            shown = ", ".join(keys[:20]) + (" …" if len(keys) > 20 else "")
            click.echo(f"{len(keys)} {label}: {shown}")
    if drift.ok:
        click.echo("The index matches the database.")
    elif fix:
        click.echo("Repaired.")
    else:
        click.echo("Run with --fix to repair.")
        sys.exit(1)


@search_cli.command("query")
@click.argument("text")
@click.option("--as", "email", required=True, help="Search as this user, seeing only what they may see.")
@click.option("--json", "as_json", is_flag=True)
@click.option("--limit", default=10, show_default=True, type=click.IntRange(1, 500))
def search_query(text: str, email: str, as_json: bool, limit: int) -> None:
    """Print what this user would find, best first."""
    session = db.get_session()
    try:
        user = accounts.user_by_email(session, email)
    except DomainError as error:
        _fail(error)
    with current_app.test_request_context(base_url=current_app.config["BASE_URL"]):
        page = search_service.search(session, user, text, today=date.today(), per_page=limit, facets=False,
                                     lang=user.lang)
        base = current_app.config["BASE_URL"].rstrip("/")
        rows = [{"id": item.id, "external_id": item.external_id, "kind": item.kind, "title": item.title,
                 "score": round(item.score, 4), "snippet": item.snippet, "url": base + item.url}
                for item in page.items]
    for notice in page.notices:
        click.echo(notice, err=True)
    if as_json:
        click.echo(json.dumps(rows, ensure_ascii=False))
        return
    click.echo(f"{page.total} results")
    for row in rows:
        click.echo(f"{row['id']}\t{row['external_id'] or '-'}\t{row['kind']}\t{row['score']}\t{row['title']}\t{row['url']}")
        click.echo(f"\t{row['snippet']}")


tokens_cli = AppGroup("tokens", help="Personal API tokens.")


@tokens_cli.command("create")
@click.argument("email")
@click.option("--scope", required=True, type=click.Choice(SCOPES))
@click.option("--expires", "days", default=tokens.DEFAULT_DAYS, show_default=True, type=int, help="Days until it expires.")
@click.option("--name", default="", help="What the token is for.")
def tokens_create(email: str, scope: str, days: int, name: str) -> None:
    """Issue a token for a user; it is printed once, as the last word of the output."""
    def work(session):
        return tokens.create_token(session, accounts.user_by_email(session, email), scope=scope, days=days,
                                   name=name, actor=None)

    token, text = _commit_or_fail(work)
    click.echo(f"Token {token.id} ({token.prefix}, {token.scope}) for {email}, expires "
               f"{token.expires_at:%Y-%m-%d %H:%M} UTC. It is shown only now: {text}")


@tokens_cli.command("revoke")
@click.argument("key", metavar="ID|PREFIX")
def tokens_revoke(key: str) -> None:
    """Revoke a token by its id or prefix."""
    def work(session):
        token = tokens.token_by_id_or_prefix(session, key)
        tokens.revoke_token(session, token, actor=None)
        return token

    token = _commit_or_fail(work)
    click.echo(f"Revoked token {token.id} ({token.prefix}) of {token.user.email}.")


@tokens_cli.command("list")
@click.argument("email")
def tokens_list(email: str) -> None:
    """A user's tokens: id, prefix, scope, expiry, last use and state."""
    session = db.get_session()
    try:
        user = accounts.user_by_email(session, email)
    except DomainError as error:
        _fail(error)
    now = db.utcnow()
    for token in tokens.tokens_of(session, user):
        state = "revoked" if token.revoked_at else "expired" if token.expires_at <= now else "active"
        used = f"{token.last_used_at:%Y-%m-%d %H:%M}" if token.last_used_at else "never"
        click.echo(f"{token.id}\t{token.prefix}\t{token.scope}\texpires {token.expires_at:%Y-%m-%d}\t"
                   f"last used {used}\t{state}\t{token.name}")


subscriptions_cli = AppGroup("subscriptions", help="Topic, channel and note subscriptions.")
digests_cli = AppGroup("digests", help="Digest e-mails.")


def _target_options(command):
    for option in reversed([
        click.option("--topic", help="Topic slug from content/topics.json."),
        click.option("--channel", help="Channel slug (one the user may read)."),
        click.option("--note", "note_id", type=int, help="Note id: follow one note or case."),
    ]):
        command = option(command)
    return command


@subscriptions_cli.command("add")
@click.argument("email")
@_target_options
@click.option("--frequency", required=True, type=click.Choice(FREQUENCIES))
def subscriptions_add(email: str, topic: str | None, channel: str | None, note_id: int | None,
                      frequency: str) -> None:
    """Subscribe a user to a topic, a channel or a note (with none of them: everything they may read)."""
    subscription = _commit_or_fail(lambda session: subscriptions.subscribe(
        session, accounts.user_by_email(session, email), frequency=frequency, topic=topic, channel=channel,
        note_id=note_id))
    click.echo(f"{email}: {subscriptions.describe(subscription)}, {subscription.frequency}.")


@subscriptions_cli.command("list")
@click.argument("email")
def subscriptions_list(email: str) -> None:
    """List a user's subscriptions."""
    session = db.get_session()
    try:
        user = accounts.user_by_email(session, email)
    except DomainError as error:
        _fail(error)
    rows = subscriptions.for_user(session, user)
    for subscription in rows:
        muted = " (muted)" if subscription.is_muted else ""
        click.echo(f"{subscription.id}\t{subscription.frequency}{muted}\t{subscriptions.describe(subscription)}")
    if not rows:
        click.echo(f"{email} follows nothing.")


@subscriptions_cli.command("remove")
@click.argument("email")
@_target_options
def subscriptions_remove(email: str, topic: str | None, channel: str | None, note_id: int | None) -> None:
    """Remove a user's subscription to a topic, channel or note (with none of them: to everything)."""
    def work(session):
        user = accounts.user_by_email(session, email)
        subscription = subscriptions.find(session, user, topic=topic, channel=channel, note_id=note_id)
        label = subscriptions.describe(subscription)
        subscriptions.remove(session, subscription, actor=None)
        return label

    click.echo(f"{email}: removed {_commit_or_fail(work)}.")


@digests_cli.command("send")
@click.option("--frequency", required=True, type=click.Choice(digests.SENT_FREQUENCIES))
@click.option("--at", "at_text", help="Send as if it were this UTC time (ISO 8601); default: now.")
@click.option("--dry-run", is_flag=True, help="Compose every digest and report; send and record nothing.")
def digests_send(frequency: str, at_text: str | None, dry_run: bool) -> None:
    """Send the digests of the last complete period; safe to rerun: nothing is sent twice."""
    try:
        at = datetime.fromisoformat(at_text) if at_text else datetime.now(UTC)
    except ValueError:
        raise click.BadParameter(f"{at_text!r} is not an ISO time such as 2026-11-21T06:00.", param_hint="--at") from None
    if at.tzinfo is not None:
        at = at.astimezone(UTC).replace(tzinfo=None)
    session = db.get_session()
    # Each delivery is committed before and after its message goes out: that is what makes reruns safe.
    report = digests.send_digests(session, frequency=frequency, at=at, dry_run=dry_run, checkpoint=session.commit)
    verb = "would send" if dry_run else "sent"
    click.echo(f"{frequency} digests up to {report.period_end.isoformat(timespec='minutes')} UTC: {verb} "
               f"{report.sent}, {report.already_sent} already sent, {report.empty} empty, "
               f"{report.items} items, {len(report.failed)} failed.")
    for email, error in report.failed:
        click.echo(f"failed: {email}: {error}", err=True)
    if report.aborted:
        click.echo(f"Stopped: {report.aborted}. What was not sent stays pending for the next run.", err=True)
    if report.failed:
        sys.exit(1)
@users_cli.command("reset-2fa")
@click.argument("email")
def users_reset_2fa(email: str) -> None:
    """Remove an account's second factor (lost phone); they set it up again at their next sign-in."""
    user = _commit_or_fail(lambda session: _reset_2fa(session, email))
    click.echo(f"Two-factor sign-in reset for {user.email}; their sessions were ended.")


def _reset_2fa(session, email: str):
    from portal.services import twofactor

    user = accounts.user_by_email(session, email)
    twofactor.reset(session, user, actor=None)
    return user


@notifications_cli.command("overdue")
def notifications_overdue() -> None:
    """Notify askers of questions that went overdue (run daily, e.g. from cron; safe to run again)."""
    count = _commit_or_fail(lambda session: notifications_service.notify_overdue(session, date.today()))
    click.echo(f"{count} overdue notifications created.")


def _secret_key_file() -> Path:
    return Path(current_app.instance_path) / "secret_key"


@click.command("backup")
@click.argument("path", type=click.Path(file_okay=False, path_type=Path))
@with_appcontext
def backup_command(path: Path) -> None:
    """Back up the SQLite database and secret key into a new directory PATH (safe while serving)."""
    manifest = _commit_or_fail(lambda session: backup.create_backup(
        session, path, secret_key_file=_secret_key_file()))
    counts = ", ".join(f"{n} {table.replace('_', ' ')}" for table, n in manifest.counts.items())
    click.echo(f"Backed up to {path} (migration {manifest.revision or 'none'}): {counts}.")
    if not manifest.has_secret_key:
        click.echo("No secret key file: the key comes from PORTAL_SECRET_KEY; keep it with the backup.")
    click.echo("The search index is not copied: `restore` rebuilds it from the database.")


@click.command("restore")
@click.argument("path", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="Overwrite a database that already holds a portal.")
@with_appcontext
def restore_command(path: Path, force: bool) -> None:
    """Restore a backup made by `backup` into this instance (stop the web server first)."""
    session = db.get_session()
    try:
        manifest = backup.restore_backup(session, path, secret_key_file=_secret_key_file(), force=force)
    except DomainError as error:
        _fail(error)
    session = db.get_session()
    count = search_service.rebuild(session, search_service.index_for(current_app))
    click.echo(f"Restored {path} (made {manifest.created_at}, migration {manifest.revision or 'none'}); "
               f"rebuilt the search index with {count} documents.")


export_cli = AppGroup("export", help="Exports of a channel or a case file, for records retention.")


def _export(run, as_email: str, out: Path) -> None:
    """Export as that user (the web's permission rules apply); the audit record is committed first,
    so no export leaves the portal unrecorded."""
    result = _commit_or_fail(lambda session: run(session, accounts.user_by_email(session, as_email)))
    out.write_bytes(result.data)
    click.echo(f"Wrote {out}: {result.notes} notes, {result.replies} replies.")


_export_options = [
    click.option("--as", "as_email", required=True, help="Export as this user, with their permissions."),
    click.option("--format", "fmt", type=click.Choice(["json", "markdown"]), default="json", show_default=True),
    click.option("--out", required=True, type=click.Path(dir_okay=False, writable=True, path_type=Path)),
]


def _with_export_options(command):
    for option in reversed(_export_options):
        command = option(command)
    return command


@export_cli.command("channel")
@click.argument("slug")
@_with_export_options
def export_channel(slug: str, as_email: str, fmt: str, out: Path) -> None:
    """Export a channel: every live note, its thread and every revision."""
    _export(lambda session, user: export.export_channel(session, user, slug, fmt=fmt), as_email, out)


@export_cli.command("case")
@click.argument("note_id", type=int)
@_with_export_options
def export_case(note_id: int, as_email: str, fmt: str, out: Path) -> None:
    """Export a case file: the case note, its thread and every revision."""
    _export(lambda session, user: export.export_case(session, user, note_id, fmt=fmt), as_email, out)


def register_operations(app: Flask) -> None:
    """Commands for operators: backup, restore and export."""
    for command in (backup_command, restore_command, export_cli):
        app.cli.add_command(command)
