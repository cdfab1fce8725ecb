"""Ad accounts: connect (token checked by a live read first), list, remove, get a client.

A token is encrypted before it is stored and decrypted only to build a Graph client.
Nothing is stored when the live read fails or answers what Rex cannot use: another
account's id, a currency whose minor unit Rex does not know, a time zone that is not a
real IANA zone, a budget that is not a budget (see `core.meta.objects`).
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from core.crypto import SecretBox, SecretKeyError, secret_box
from core.db import read_session, write_session
from core.db.models import AdAccount, AdEntity, TokenStatus
from core.db.types import utcnow
from core.errors import InputError, NotFoundError
from core.meta import GraphClient
from core.meta.objects import ACCOUNT_STATUS_LABELS, InvalidAnswerError
from core.settings import get_settings

_ACCOUNT_ID = re.compile(r"^(?:act_)?(\d{1,20})$")


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
    token_status: str
    token_error: str | None
    token_readable: bool  # False: the current key cannot decrypt it (or the key is missing)
    graph_url: str | None
    last_sync_at: datetime | None
    last_sync_status: str | None
    last_sync_error: str | None
    rate_limited_until: datetime | None
    campaigns: int
    adsets: int
    ads: int

    @property
    def needs_reconnect(self) -> bool:
        return self.token_status == TokenStatus.NEEDS_RECONNECT


def normalise_account_id(value: str) -> str:
    match = _ACCOUNT_ID.match((value or "").strip())
    if not match:
        raise InputError(
            "account",
            f"{value!r} is not an ad account id; use act_ followed by digits, "
            "e.g. act_1234567890 (Ads Manager shows it in the account menu)",
        )
    return f"act_{match.group(1)}"


def check_graph_url(url: str | None) -> str | None:
    """An account may live on another Graph endpoint (the sandbox). Tokens must not travel
    in clear text, so plain http is allowed for loopback addresses only."""
    if url is None or not url.strip():
        return None
    url = url.strip().rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InputError(
            "graph_url", f"{url!r} is not an http(s) URL, e.g. https://graph.facebook.com"
        )
    if parts.path not in ("", "/") or parts.query:
        raise InputError("graph_url", "give the base URL only, without a version or path")
    if parts.scheme == "http" and not _is_loopback(parts.hostname):
        raise InputError(
            "graph_url",
            "plain http is allowed for loopback only (it would send the token "
            "in clear text); use https",
        )
    return url


def connect_account(
    account: str, token: str, *, graph_url: str | None = None, engine: Engine | None = None
) -> AccountView:
    """Check `token` with a live read of the account, then store it encrypted.

    Reconnecting an existing account replaces its token and clears its error state.
    Raises InputError for bad input, a GraphError subclass when Meta refuses.
    """
    external_id = normalise_account_id(account)
    token = (token or "").strip()
    if not token:
        raise InputError(
            "token",
            "an access token is required (a long-lived user token or "
            "a system-user token with ads_management)",
        )
    graph_url = check_graph_url(graph_url)

    info = GraphClient(token, account_id=external_id, base_url=graph_url).get_account(external_id)
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
        session.flush()
        account_id = row.id
    return get_account(account_id, engine=engine)


def list_accounts(engine: Engine | None = None) -> list[AccountView]:
    with read_session(engine) as session:
        rows = session.scalars(select(AdAccount).order_by(AdAccount.name, AdAccount.id)).all()
        counts = _entity_counts(session)
        box = _current_box()
        return [_view(row, counts.get(row.id, {}), box) for row in rows]


def get_account(account_id: int | str, engine: Engine | None = None) -> AccountView:
    with read_session(engine) as session:
        row = _find(session, account_id)
        return _view(row, _entity_counts(session, row.id).get(row.id, {}), _current_box())


def remove_account(account_id: int | str, engine: Engine | None = None) -> AccountView:
    """Delete an account and everything synced for it (entities, metrics, breakdowns)."""
    view = get_account(account_id, engine=engine)
    with write_session(engine) as session:
        session.delete(_find(session, view.id))
    return view


def client_for(account: AdAccount, **options: object) -> GraphClient:
    """A Graph client for a stored account, honouring any rate-limit block on record."""
    token = secret_box().decrypt(account.token_encrypted)
    return GraphClient(
        token,
        account_id=account.external_id,
        base_url=account.graph_url or get_settings().graph_base_url,
        blocked_until=account.rate_limited_until,
        **options,  # type: ignore[arg-type]
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
    return row


def _entity_counts(session: Session, account_id: int | None = None) -> dict[int, dict[str, int]]:
    query = select(AdEntity.account_id, AdEntity.level, func.count()).group_by(
        AdEntity.account_id, AdEntity.level
    )
    if account_id is not None:
        query = query.where(AdEntity.account_id == account_id)
    counts: dict[int, dict[str, int]] = {}
    for owner, level, count in session.execute(query):
        counts.setdefault(owner, {})[level] = count
    return counts


def _current_box() -> SecretBox | None:
    """The box of the configured key, or None when there is no usable key (never makes one)."""
    try:
        return secret_box()
    except SecretKeyError:
        return None


def _view(row: AdAccount, counts: dict[str, int], box: SecretBox | None) -> AccountView:
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
        campaigns=counts.get("campaign", 0),
        adsets=counts.get("adset", 0),
        ads=counts.get("ad", 0),
    )


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


SECRET_SETTINGS = ("secret_key", "meta_app_secret")


def sandbox_urls(engine: Engine | None = None) -> list[str]:
    """Graph URLs of connected accounts that live on a loopback sandbox."""
    urls = {a.graph_url for a in list_accounts(engine) if a.graph_url}
    return sorted(u for u in urls if _is_loopback(urlsplit(u).hostname or ""))


def reset_sandboxes(engine: Engine | None = None) -> list[str]:
    """Put every connected sandbox back to its generated world (its writes undone).
    Raises InputError when no sandbox is connected."""
    import requests

    urls = sandbox_urls(engine)
    if not urls:
        raise InputError(
            "sandbox", "no connected account lives on a sandbox; `make run` starts one"
        )
    for url in urls:
        answer = requests.post(f"{url}/__sandbox/reset", timeout=10)
        answer.raise_for_status()
    return urls


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
