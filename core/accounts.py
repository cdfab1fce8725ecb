"""Ad accounts: connect (token checked by a live read first), list, remove, get a client.

A token is encrypted before it is stored and decrypted only to build a Graph client.
Nothing is stored when the live read fails or answers what Rex cannot use: another
account's id, a currency whose minor unit Rex does not know, a time zone that is not a
real IANA zone, a budget that is not a budget (see `core.meta.objects`).

Removing an account keeps the record: the row stays (`removed_at`, token wiped) so the
actions, approvals, executions and notifications of it still name it; its synced data
goes. A removed account is not listed, synced or acted on (`client_for` refuses it);
connecting it again brings it back.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, get_args
from urllib.parse import urlsplit

from pydantic import SecretStr
from sqlalchemy import Engine, delete, func, select, update
from sqlalchemy.orm import Session

from core import clock
from core.access.actor import Actor
from core.access.audit import record
from core.access.roles import Permission
from core.crypto import SecretBox, SecretKeyError, secret_box
from core.db import read_session, write_session
from core.db.models import (
    UNSETTLED,
    ActionHistory,
    AdAccount,
    AdEntity,
    ApprovalStatus,
    Level,
    Notification,
    PendingAction,
    RexSuggestion,
    SyncStatus,
    TokenStatus,
)
from core.db.types import utcnow
from core.errors import InputError, NotFoundError, RexError
from core.ids import normalise_account_id
from core.meta import GraphClient, GraphOptions
from core.meta.errors import (
    ConnectionFailedError,
    GraphError,
    PermissionDeniedError,
    TokenInvalidError,
    TransientError,
    UnexpectedResponseError,
)
from core.meta.objects import ACCOUNT_STATUS_LABELS, InvalidAnswerError
from core.notify.events import EVENTS, Event
from core.settings import Settings, get_settings, is_loopback

TOKEN_NEEDED = (
    "a long-lived user token or a system-user token with the ads_management permission "
    "on this ad account (Business Settings → Users → System users → Generate new token)"
)


class AccountRemovedError(RexError):
    """A removed account was asked to talk to Meta: it has no token any more."""


class AccountBusyError(RexError):
    """An account cannot be removed now (writes to it are still being settled)."""


@dataclass(frozen=True)
class AccountView:
    """An account as the CLI and the UI show it — never with its token."""

    id: int
    external_id: str
    name: str
    currency: str
    timezone_name: str
    account_status: int
    status_label: str
    token_status: TokenStatus
    token_error: str | None
    token_readable: bool  # False: the current key cannot decrypt it (or the key is missing)
    graph_url: str | None
    last_sync_at: datetime | None
    last_sync_status: SyncStatus | None
    last_sync_error: str | None
    rate_limited_until: datetime | None
    campaigns: int
    adsets: int
    ads: int
    removed_at: datetime | None = None
    four_eyes: bool = False  # whoever last changed a rule cannot approve its proposals

    @property
    def needs_reconnect(self) -> bool:
        return self.token_status == TokenStatus.NEEDS_RECONNECT

    @property
    def removed(self) -> bool:
        return self.removed_at is not None


def check_graph_url(url: str | None) -> str | None:
    """An account may live on another Graph endpoint (the sandbox). Tokens must not travel
    in clear text, so plain http is allowed for loopback addresses only."""
    if url is None or not url.strip():
        return None
    url = url.strip().rstrip("/")
    example = "e.g. https://graph.facebook.com"
    try:
        parts = urlsplit(url)
        _ = parts.port  # raises ValueError for a port that is not one
    except ValueError as error:  # "http://[::1", "http://localhost:99999"
        raise InputError("graph_url", f"{url!r} is not a URL ({error}), {example}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InputError("graph_url", f"{url!r} is not an http(s) URL, {example}")
    if parts.path not in ("", "/") or parts.query:
        raise InputError("graph_url", "give the base URL only, without a version or path")
    if parts.scheme == "http" and not is_loopback(parts.hostname):
        raise InputError(
            "graph_url",
            "plain http is allowed for loopback only (it would send the token "
            "in clear text); use https",
        )
    return url


def connect_account(
    account: str,
    token: str,
    *,
    by: Actor,
    graph_url: str | None = None,
    engine: Engine | None = None,
) -> AccountView:
    """Check `token` with a live read of the account, then store it encrypted, as `by`
    (an admin: connecting accounts is theirs; the audit log records it, never the token).

    Reconnecting an existing account replaces its token and clears its error state;
    connecting a removed one brings it back. Raises InputError for bad input (a token
    that cannot be one included), a GraphError subclass when the read fails — its `hint`
    then says, for this connection, what happened and what to do (see `_connect_hint`) —
    and SecretKeyError when the token cannot be encrypted (no usable key).
    """
    by.require(Permission.MANAGE_ACCOUNTS)
    external_id = normalise_account_id(account)
    token = (token or "").strip()
    if not token:
        raise InputError("token", f"an access token is required: {TOKEN_NEEDED}")
    graph_url = check_graph_url(graph_url)
    ahead = clock.ahead_days()
    if ahead and not _on_sandbox(graph_url):
        raise InputError(
            "graph_url",
            f"Rex's clock runs {ahead} day(s) ahead with the sandbox's; a real Meta account "
            "must never be acted on at a simulated time. Reset the sandbox (Accounts page, "
            "or POST …/__sandbox/reset and delete <data dir>/clock.json) first",
        )

    client = GraphClient(token, account_id=external_id, base_url=graph_url)
    try:
        info = client.get_account(external_id)
    except GraphError as error:
        error.hint = _connect_hint(
            error, external_id, client.base_url, _is_connected(external_id, engine)
        )
        raise
    if info.external_id != external_id:
        raise InvalidAnswerError(
            f"the ad account answer for {external_id}",
            "id",
            info.external_id,
            f"{external_id}, the account asked for (check the account id and the Graph URL)",
        )

    encrypted = secret_box(create=True, engine=engine).encrypt(token)
    now = utcnow()
    with write_session(engine) as session:
        row = session.scalar(
            select(AdAccount).where(
                AdAccount.platform == "meta", AdAccount.external_id == info.external_id
            )
        )
        action = "account.reconnect" if row is not None and row.connected else "account.connect"
        if row is None:
            row = AdAccount(platform="meta", external_id=info.external_id)
            session.add(row)
        row.name = info.name
        row.currency = info.currency
        row.timezone_name = info.timezone_name
        row.account_status = info.account_status
        row.min_daily_budget_minor = info.min_daily_budget_minor
        row.graph_url = graph_url
        row.token_encrypted = encrypted
        row.token_status = TokenStatus.OK
        row.token_checked_at = now
        row.token_error = None
        row.rate_limited_until = None
        row.removed_at = None
        session.flush()
        account_id = row.id
        record(session, by, action, "account", info.external_id, account_id=row.id, at=now,
               new={"name": info.name, "currency": info.currency,
                    "graph_url": graph_url})  # fmt: skip
    return get_account(account_id, engine=engine)


def _is_connected(external_id: str, engine: Engine | None) -> bool:
    with read_session(engine) as session:
        row = session.scalar(
            select(AdAccount).where(
                AdAccount.platform == "meta", AdAccount.external_id == external_id
            )
        )
        return row is not None and row.connected


def _connect_hint(error: GraphError, external_id: str, url: str, reconnecting: bool) -> str:
    """What a failed connection means, for this account: never "reconnect" to an account
    that was never connected, never "Meta refused" for an answer that never came."""
    kept = f"{external_id} keeps the token it had" if reconnecting else "nothing was stored"
    if isinstance(error, ConnectionFailedError):
        return (
            f"Rex could not reach the Graph API at {url}, so the token was not checked and "
            f"{kept}. Check the Graph API URL (the sandbox prints its graph_url when it "
            "starts; leave the field empty for Meta) and this machine's network, then try again."
        )
    if isinstance(error, TransientError):
        return (
            f"The Graph API at {url} had a temporary problem and did not check the token; "
            f"{kept}. Try again in a minute."
        )
    if isinstance(error, TokenInvalidError):
        return (
            f"{_who(url)} refused this access token (expired, revoked or not a token); "
            f"{kept}. Paste {TOKEN_NEEDED}."
        )
    if isinstance(error, PermissionDeniedError):
        return (
            f"The token works but may not read {external_id}; {kept}. It needs the "
            "ads_management permission on this ad account: add the user or system user to "
            "the account in Business Settings, or check the account id."
        )
    if isinstance(error, UnexpectedResponseError) and not isinstance(error, InvalidAnswerError):
        status = f" HTTP {error.http_status}" if error.http_status else ""
        return (
            f"The server at {url} answered{status}, but not as the Graph API answers (no "
            f"JSON, or not Meta's shape), so the token was not checked and {kept}. Check the "
            "Graph API URL: the address of the Graph API or the sandbox with no path after "
            "it (leave the field empty for Meta), then try again."
        )
    return f"{error.hint} ({kept})"


def _who(url: str) -> str:
    """Meta, or the other Graph endpoint that answered (a sandbox, a proxy)."""
    return "Meta" if urlsplit(url).hostname == "graph.facebook.com" else f"The Graph API at {url}"


def readable_accounts(actor: Actor, engine: Engine | None = None) -> list[AccountView]:
    """The connected accounts `actor` may read, by name."""
    readable = actor.account_ids(Permission.READ)
    return [a for a in list_accounts(engine) if readable is None or a.id in readable]


def list_accounts(
    engine: Engine | None = None, *, include_removed: bool = False
) -> list[AccountView]:
    """Connected accounts by name; removed ones too with `include_removed`."""
    with read_session(engine) as session:
        query = select(AdAccount).order_by(AdAccount.name, AdAccount.id)
        if not include_removed:
            query = query.where(AdAccount.connected)
        rows = session.scalars(query).all()
        counts = _entity_counts(session)
        box = _current_box()
        return [_view(row, counts.get(row.id, {}), box) for row in rows]


def get_account(account_id: int | str, engine: Engine | None = None) -> AccountView:
    """A connected account by Rex's id or act_…; NotFoundError for a removed one."""
    with read_session(engine) as session:
        row = _find(session, account_id)
        return _view(row, _entity_counts(session, row.id).get(row.id, {}), _current_box())


def read_account(
    account_id: int | str, *, actor: Actor, engine: Engine | None = None
) -> AccountView:
    """`get_account`, for someone who may read it: another team's account is not found,
    as far as they can tell."""
    account = get_account(account_id, engine)
    if not actor.can(Permission.READ, account.id):
        raise NotFoundError(
            f"no connected ad account {account_id}; `python -m core accounts list` shows them"
        )
    return account


def remove_account(
    account_id: int | str,
    engine: Engine | None = None,
    *,
    by: Actor,
    now: datetime | None = None,
) -> AccountView:
    """Take an account out of Rex, keeping the record of what Rex did on it.

    Its token is wiped and its synced data (entities, metrics, breakdowns, suggestions)
    deleted; its actions (with their entity names), approvals, executions and
    notifications stay. Proposals still waiting for a person are closed as expired.
    Refused while a write to it is still being settled (its outcome is not known yet).
    `by`: an admin; the audit log records it.
    """
    by.require(Permission.MANAGE_ACCOUNTS)
    now = now or utcnow()
    with write_session(engine) as session:
        row = _find(session, account_id)
        record(session, by, "account.remove", "account", row.external_id, account_id=row.id,
               at=now, old={"name": row.name})  # fmt: skip
        unsettled = session.scalar(
            select(func.count(ActionHistory.id)).where(
                ActionHistory.account_id == row.id, ActionHistory.status.in_(UNSETTLED)
            )
        )
        if unsettled:
            raise AccountBusyError(
                f"{row.external_id} has {unsettled} change(s) whose outcome Rex is still "
                "settling; remove it once they are settled (`python -m core actions unknown`, "
                "or the Executions page)"
            )
        view = _view(row, _entity_counts(session, row.id).get(row.id, {}), None)
        session.execute(
            update(PendingAction)
            .where(
                PendingAction.account_id == row.id,
                PendingAction.status == ApprovalStatus.PENDING,
            )
            .values(
                status=ApprovalStatus.EXPIRED,
                decided_at=now,
                decided_by="rex",
                decision_reason=f"the account {row.external_id} was removed from Rex",
                version=PendingAction.version + 1,
            )
            .execution_options(synchronize_session=False)
        )
        session.execute(
            delete(RexSuggestion)
            .where(RexSuggestion.account_id == row.id)
            .execution_options(synchronize_session=False)
        )
        # Metrics and breakdowns go with their entities (ON DELETE CASCADE); the record's
        # links to the entities are set to NULL and keep the entity names.
        session.execute(
            delete(AdEntity)
            .where(AdEntity.account_id == row.id)
            .execution_options(synchronize_session=False)
        )
        row.removed_at = now
        row.token_encrypted = ""
        row.token_status = TokenStatus.REMOVED
        row.token_error = None
        row.rate_limited_until = None
    return view


def set_four_eyes(
    account_id: int | str, on: bool, *, by: Actor, engine: Engine | None = None
) -> AccountView:
    """Turn four-eyes on or off for an account (an admin's): while on, whoever last
    changed a rule cannot approve its proposals there (core/actions/approvals.py)."""
    by.require(Permission.MANAGE_ACCOUNTS)
    with write_session(engine) as session:
        row = _find(session, account_id)
        if row.four_eyes != on:
            record(session, by, "account.four_eyes", "account", row.external_id,
                   account_id=row.id, old={"four_eyes": row.four_eyes},
                   new={"four_eyes": on})  # fmt: skip
            row.four_eyes = on
        session.flush()
        return _view(row, _entity_counts(session, row.id).get(row.id, {}), None)


def hold_for_token(session: Session, row: AdAccount, why: str) -> None:
    """Meta rejected the account's token: hold the account (no call until it is
    reconnected) and tell its people — once, when it becomes held, not at every call
    that finds it so (`connect_account` lifts the hold)."""
    if row.token_status == TokenStatus.NEEDS_RECONNECT:
        return
    row.token_status = TokenStatus.NEEDS_RECONNECT
    row.token_error = why
    session.add(
        Notification(
            account_id=row.id,
            kind=Event.ACCOUNT_HELD,
            title=f"Reconnect {row.name} ({row.external_id}): Meta rejected its token",
            body=f"{why} Rex makes no call to this account, and its rules do not run, until "
            "an admin connects it again with a new token (Accounts page).",
            link=EVENTS[Event.ACCOUNT_HELD].page,
            details={"facts": {"Account": f"{row.name} ({row.external_id})"}},
        )
    )


def client_for(account: AdAccount, **options: Any) -> GraphClient:
    """A Graph client for a stored account, honouring any rate-limit block on record.
    `options` change fields of the settings' `GraphOptions` (`poll_seconds=…`).
    Raises AccountRemovedError for a removed account (nothing is synced or sent for it)."""
    if account.removed_at is not None:
        raise AccountRemovedError(
            f"{account.external_id} was removed from Rex on {account.removed_at:%Y-%m-%d} "
            "and has no token: connect it again (Accounts page) to sync or act on it"
        )
    token = secret_box().decrypt(account.token_encrypted)
    return GraphClient(
        token,
        account_id=account.external_id,
        base_url=account.graph_url,
        options=replace(GraphOptions.from_settings(), **options),
        blocked_until=account.rate_limited_until,
    )


def _find(session: Session, account_id: int | str) -> AdAccount:
    if isinstance(account_id, int):
        row = session.get(AdAccount, account_id)
    else:
        row = session.scalar(
            select(AdAccount).where(AdAccount.external_id == normalise_account_id(account_id))
        )
    if row is None:
        raise NotFoundError(
            f"no connected ad account {account_id}; `python -m core accounts list` shows them"
        )
    if row.removed_at is not None:
        raise NotFoundError(
            f"{row.external_id} “{row.name}” was removed from Rex on "
            f"{row.removed_at:%Y-%m-%d %H:%M} UTC; connect it again to use it (what Rex did "
            "on it stays on the record)"
        )
    return row


def _entity_counts(session: Session, account_id: int | None = None) -> dict[int, dict[Level, int]]:
    query = select(AdEntity.account_id, AdEntity.level, func.count()).group_by(
        AdEntity.account_id, AdEntity.level
    )
    if account_id is not None:
        query = query.where(AdEntity.account_id == account_id)
    counts: dict[int, dict[Level, int]] = {}
    for owner, level, count in session.execute(query):
        counts.setdefault(owner, {})[level] = count
    return counts


def _current_box() -> SecretBox | None:
    """The box of the configured key, or None when there is no usable key (never makes one)."""
    try:
        return secret_box()
    except SecretKeyError:
        return None


def _view(row: AdAccount, counts: dict[Level, int], box: SecretBox | None) -> AccountView:
    return AccountView(
        id=row.id,
        external_id=row.external_id,
        name=row.name,
        currency=row.currency,
        timezone_name=row.timezone_name,
        account_status=row.account_status,
        status_label=ACCOUNT_STATUS_LABELS.get(row.account_status, str(row.account_status)),
        token_status=row.token_status,
        token_error=row.token_error,
        token_readable=bool(box and row.token_encrypted and box.can_decrypt(row.token_encrypted)),
        graph_url=row.graph_url,
        last_sync_at=row.last_sync_at,
        last_sync_status=row.last_sync_status,
        last_sync_error=row.last_sync_error,
        rate_limited_until=row.rate_limited_until,
        campaigns=counts.get(Level.CAMPAIGN, 0),
        adsets=counts.get(Level.ADSET, 0),
        ads=counts.get(Level.AD, 0),
        removed_at=row.removed_at,
        four_eyes=row.four_eyes,
    )


# The settings that hold secrets: every SecretStr field (never shown, only "set").
SECRET_SETTINGS = tuple(
    name
    for name, field in Settings.model_fields.items()
    if field.annotation is SecretStr or SecretStr in get_args(field.annotation)
)


def _on_sandbox(graph_url: str | None) -> bool:
    return bool(graph_url) and is_loopback(urlsplit(graph_url or "").hostname or "")


def sandbox_urls(engine: Engine | None = None) -> list[str]:
    """Graph URLs of connected accounts that live on a loopback sandbox."""
    return sorted(
        {a.graph_url for a in list_accounts(engine) if a.graph_url and _on_sandbox(a.graph_url)}
    )


@dataclass(frozen=True)
class SandboxClock:
    """Where the sandbox's clock (and Rex's with it) stands after moving it."""

    ahead_days: int
    today: dict[str, str]  # account → its local date on the sandbox
    accounts: list[str]  # the accounts that live on the moved sandboxes (to sync next)


def advance_sandboxes(days: int, *, by: Actor, engine: Engine | None = None) -> SandboxClock:
    """Move every connected sandbox's clock `days` forward and Rex's own with it, so the
    days that pass are generated, synced and judged as days. Refused while an account
    that is not on a sandbox is connected (a real account is never acted on at a
    simulated time). Raises InputError for a bad `days` or no sandbox."""
    import requests

    by.require(Permission.MANAGE_ACCOUNTS)
    if not isinstance(days, int) or isinstance(days, bool) or not 1 <= days <= 366:
        raise InputError("days", f"{days!r}: move the sandbox 1 to 366 days forward")
    accounts = list_accounts(engine)
    real = [a.external_id for a in accounts if not _on_sandbox(a.graph_url)]
    if real:
        raise InputError(
            "days",
            ", ".join(real)
            + (" is a real Meta account" if len(real) == 1 else " are real Meta accounts")
            + ": Rex's clock stays the wall clock while one is connected. Simulated days are "
            "for a sandbox-only install",
        )
    urls = sandbox_urls(engine)
    if not urls:
        raise InputError(
            "sandbox", "no connected account lives on a sandbox; `make run` starts one"
        )
    answers = []
    for url in urls:
        try:
            answer = requests.post(
                f"{url}/__sandbox/clock", json={"advance_days": days}, timeout=30
            )
            answer.raise_for_status()
        except requests.RequestException as error:
            raise SandboxResetError(
                f"the sandbox at {url} did not move its clock ({type(error).__name__}); is it "
                "running? `make run` starts it"
            ) from None
        answers.append(answer.json())
    ahead = max(int(a["advanced_days"]) for a in answers)
    clock.set_ahead_days(ahead)
    with write_session(engine) as session:
        record(session, by, "sandbox.advance", "sandbox", None,
               new={"days": days, "ahead_days": ahead})  # fmt: skip
    today = {k: v for a in answers for k, v in a["today"].items()}
    return SandboxClock(ahead, today, [a.external_id for a in accounts if a.graph_url in urls])


class SandboxResetError(RexError):
    """A connected sandbox did not take the reset (or the move of its clock)."""


def reset_sandboxes(engine: Engine | None = None, *, by: Actor) -> list[str]:
    """Put every connected sandbox back to its generated world (its writes undone, its
    state file rewritten). Returns the external ids of the accounts that live on them
    (to sync next). Raises InputError when no sandbox is connected."""
    import requests

    by.require(Permission.MANAGE_ACCOUNTS)
    urls = sandbox_urls(engine)
    if not urls:
        raise InputError(
            "sandbox", "no connected account lives on a sandbox; `make run` starts one"
        )
    with write_session(engine) as session:
        record(session, by, "sandbox.reset", "sandbox", None, new={"sandboxes": urls})
    for url in urls:
        try:
            requests.post(f"{url}/__sandbox/reset", timeout=10).raise_for_status()
        except requests.RequestException as error:
            raise SandboxResetError(
                f"the sandbox at {url} did not take the reset ({type(error).__name__}); "
                "is it running? `make run` starts it"
            ) from None
    clock.set_ahead_days(0)  # a reset sandbox is back on the wall clock, and so is Rex
    return [a.external_id for a in list_accounts(engine) if a.graph_url in urls]


def public_settings() -> dict[str, str]:
    """The settings in effect, secrets masked (for the Accounts page and support)."""
    settings = get_settings()
    shown = {}
    for name in type(settings).model_fields:
        value = getattr(settings, name)
        if name in SECRET_SETTINGS:
            value = "set (hidden)" if value else "not set"
        elif name == "database_url":
            from sqlalchemy.engine import make_url

            value = make_url(value).render_as_string(hide_password=True)
        shown[name] = str(value)
    return shown
