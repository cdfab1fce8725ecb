"""Settings, read from the environment and an optional `.env` file.

Every setting is documented in the README's settings table; the names there are the
environment variables below (`REX_` prefix, except `DATABASE_URL`).

Secrets are `SecretStr`: their repr and str are masked, so a settings object in a log,
a traceback or the Accounts page never shows them; `.get_secret_value()` is called only
where the secret is used.
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from core.enums import Level

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA_DIR = PROJECT_ROOT / "var"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="REX_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    database_url: str = Field(
        default=f"sqlite:///{DEFAULT_DATA_DIR / 'rex.db'}",
        validation_alias=AliasChoices("DATABASE_URL", "REX_DATABASE_URL"),
        description="SQLAlchemy URL. SQLite file by default; "
        "postgresql+psycopg://user@host/db for production.",
    )
    data_dir: Path = Field(
        default=DEFAULT_DATA_DIR,
        description="Where Rex keeps local files (SQLite database, generated key file).",
    )
    secret_key: SecretStr | None = Field(
        default=None,
        description="Fernet key that encrypts access tokens at rest. When unset, a key "
        "is generated once into REX_SECRET_KEY_FILE (mode 0600).",
    )
    secret_key_file: Path | None = Field(
        default=None,
        description="Key file used when REX_SECRET_KEY is unset (default: <data_dir>/secret.key).",
    )

    graph_base_url: str = Field(
        default="https://graph.facebook.com",
        description="Meta Graph API base URL (an account may override it, e.g. a sandbox).",
    )
    graph_api_version: str = Field(default="v26.0", description="Marketing API version.")
    meta_app_secret: SecretStr | None = Field(
        default=None, description="App secret; when set every call carries appsecret_proof."
    )
    graph_timeout_seconds: float = Field(
        default=30.0,
        gt=0,
        le=600,
        description="Each Graph call must be answered in full within this many seconds "
        "(a total deadline, not per byte: a trickling answer is cut off).",
    )
    graph_read_deadline_seconds: float = Field(
        default=900.0,
        gt=0,
        description="A whole read (every page of an edge, an async report and its pages) "
        "must finish within this many seconds.",
    )
    graph_max_pages: int = Field(
        default=2000,
        ge=1,
        description="At most this many pages per read; a Graph that keeps sending pages "
        "is cut off and the sync records why.",
    )
    graph_max_retries: int = Field(
        default=4, ge=0, le=10, description="Retries of transient / rate-limited calls."
    )
    graph_backoff_seconds: float = Field(
        default=1.0, ge=0, description="Base of the exponential backoff (full jitter)."
    )
    graph_max_inline_wait_seconds: float = Field(
        default=60.0,
        ge=0,
        description="A rate limit that regains within this many seconds is waited out; "
        "a longer one stops calls to that account until the regain time.",
    )

    sync_days: int = Field(default=30, ge=1, le=90, description="Days of metrics `sync` reads.")
    sync_async_min_days: int = Field(
        default=8,
        ge=1,
        description="Insights ranges at least this long run as async report jobs.",
    )
    sync_async_max_wait_seconds: float = Field(
        default=600.0, gt=0, description="How long an async insights report may take."
    )
    sync_async_concurrency: int = Field(
        default=3,
        ge=1,
        le=10,
        description="How many of an account's async insights reports a sync runs at once "
        "(Meta runs several report jobs of an account at a time; its rate limits count the "
        "calls, which stay the same); 1: one after another.",
    )
    breakdown_level: Level = Field(
        default=Level.ADSET,
        description="Level at which breakdown tables are synced (campaign, adset or ad).",
    )

    sandbox_host: str = Field(default="127.0.0.1", description="Sandbox bind address.")
    sandbox_port: int = Field(default=8765, ge=0, le=65535, description="Sandbox port.")
    sandbox_seed: int = Field(default=1, description="Seed of the sandbox's generated world.")
    run_sandbox: bool = Field(
        default=True, description="`make run` starts the sandbox and connects its accounts."
    )
    ui_port: int = Field(default=8501, ge=1, le=65535, description="Streamlit port.")
    ui_address: str = Field(
        default="127.0.0.1",
        min_length=1,
        description="Address the Streamlit UI listens on: 127.0.0.1 is this machine only; "
        "0.0.0.0 exposes it to the network (everyone signs in; serve it behind TLS).",
    )

    scheduler_tick_seconds: int = Field(
        default=60, ge=1, le=3600, description="How often the scheduler runs due rules."
    )
    scheduler_sync_minutes: int = Field(
        default=15, ge=1, le=1440, description="Recent sync: entities and the last 3 days."
    )
    scheduler_breakdown_minutes: int = Field(
        default=60, ge=5, le=1440, description="Breakdown tables sync interval."
    )
    scheduler_lookback_hour: int = Field(
        default=3,
        ge=0,
        le=23,
        description="Local hour (each account's time zone) of the nightly 28-day re-sync.",
    )
    scheduler_fresh_minutes: int = Field(
        default=3,
        ge=0,
        le=1440,
        description="Before a due rule runs, its accounts' recent numbers are refreshed if "
        "older than this (0: never); keeps a metric change → action under 5 minutes.",
    )
    scheduler_stale_minutes: int | None = Field(
        default=None,
        ge=1,
        description="A rule whose account has not synced within this is skipped "
        "(default: twice the sync interval).",
    )
    scheduler_stop_seconds: float = Field(
        default=30.0, gt=0, description="On SIGTERM, how long work in hand may take to finish."
    )
    engine_lease_seconds: int = Field(
        default=600, ge=5, description="How long a runner's claim on a rule lasts."
    )
    settle_delay_seconds: float = Field(
        default=300.0,
        ge=0,
        description="A write whose answer was lost is recorded as not applied only when Meta's "
        "change history still shows nothing this long after it was sent.",
    )
    settle_clock_skew_seconds: float = Field(
        default=120.0,
        ge=0,
        description="Allowance for the clocks of Rex and Meta when matching a write to Meta's "
        "change history and to an object's updated_time.",
    )
    approval_ttl_hours: float = Field(
        default=24.0,
        gt=0,
        le=24 * 30,
        description="How long a proposal waits for a person before it expires.",
    )
    suggestion_approval: str = Field(
        default="",
        description="Which suggestions, once applied, wait in the approval queue for a second "
        "person: a comma-separated list of kinds (demographic, placement, geography, "
        "dayparting, budget), 'all', or empty (none: applying is the decision).",
    )
    suggestions_hour: int = Field(
        default=6,
        ge=0,
        le=23,
        description="The UTC hour at which the scheduler regenerates suggestions every day.",
    )
    outcome_checkpoints: str = Field(
        default="1,3,7,14",
        description="The days after a change at which its outcome is measured (comma-"
        "separated, 1–28); 7, the headline, is always among them.",
    )

    admin_email: str = Field(
        default="admin@rex.local",
        description="The first admin's e-mail, made (with a generated password printed "
        "once) by `make run` / `python -m core up` when Rex has no user yet.",
    )
    session_hours: int = Field(
        default=12,
        ge=1,
        le=720,
        description="A signed-in session ends this many hours after it began (and on "
        "sign-out, a password change or the user being disabled).",
    )
    signin_max_attempts: int = Field(
        default=5,
        ge=1,
        le=100,
        description="After this many wrong passwords in a row, a user is locked out for "
        "REX_SIGNIN_LOCKOUT_MINUTES (each wrong one before that waits 1, 2, 4 … seconds).",
    )
    signin_lockout_minutes: int = Field(
        default=15, ge=1, le=1440, description="How long a lock-out lasts."
    )

    public_url: str | None = Field(
        default=None,
        description="The address people open Rex at, for the links in notifications "
        "(e.g. https://rex.example.com); default http://<REX_UI_ADDRESS>:<REX_UI_PORT>.",
    )
    smtp_host: str | None = Field(
        default=None, description="SMTP server that sends Rex's e-mail; unset: no e-mail."
    )
    smtp_port: int = Field(default=587, ge=1, le=65535, description="SMTP port.")
    smtp_tls: Literal["starttls", "tls", "none"] = Field(
        default="starttls",
        description="starttls (port 587), tls (implicit TLS, port 465) or none (a server "
        "on this machine only: a password never travels in clear text).",
    )
    smtp_username: str | None = Field(default=None, description="SMTP user, if it asks.")
    smtp_password: SecretStr | None = Field(default=None, description="SMTP password.")
    smtp_ca_file: str | None = Field(
        default=None, description="A CA bundle that signed the SMTP server's certificate."
    )
    smtp_from: str = Field(default="Rex <rex@localhost>", description="The From of Rex's e-mail.")
    slack_webhook_url: SecretStr | None = Field(
        default=None,
        description="A Slack incoming webhook (https://hooks.slack.com/services/…): the "
        "team's channel, told about every account (REX_TEAM_EVENTS).",
    )
    webhook_url: SecretStr | None = Field(
        default=None,
        description="A JSON webhook (Teams Workflows, Discord, your own service) told "
        "about every account (REX_TEAM_EVENTS); needs REX_WEBHOOK_SECRET.",
    )
    webhook_secret: SecretStr | None = Field(
        default=None,
        description="Signs each webhook request: X-Rex-Signature: sha256=HMAC(secret, "
        "timestamp + '.' + body). Also signs the webhooks people set for themselves.",
    )
    team_events: str = Field(
        default="rule_notify,action_failed,account_held,outcome_unknown,approvals_waiting",
        description="What the team channels (REX_SLACK_WEBHOOK_URL, REX_WEBHOOK_URL) are "
        "told: a comma-separated list of events, or empty for nothing.",
    )
    notify_seconds: int = Field(
        default=15, ge=1, le=3600, description="How often the scheduler delivers notifications."
    )
    notify_timeout_seconds: float = Field(
        default=20.0, gt=0, le=300, description="Each delivery must be answered within this."
    )
    notify_max_attempts: int = Field(
        default=8,
        ge=1,
        le=50,
        description="Deliveries that keep failing are retried this many times in all "
        "(exponential backoff with jitter), then shown as failed.",
    )
    notify_backoff_seconds: float = Field(
        default=30.0, ge=0, description="Base of the delivery backoff (doubling, full jitter)."
    )
    notify_claim_seconds: int = Field(
        default=120,
        ge=1,
        description="A scheduler's claim on a delivery; a scheduler that stopped mid-send "
        "leaves it to the others after this.",
    )

    log_level: str = Field(default="INFO", description="Python log level.")

    @field_validator("database_url")
    @classmethod
    def _normalise_database_url(cls, url: str) -> str:
        return normalise_database_url(url)

    @field_validator("suggestion_approval")
    @classmethod
    def _check_suggestion_approval(cls, value: str) -> str:
        kinds = {"demographic", "placement", "geography", "dayparting", "budget", "all"}
        named = {k.strip() for k in value.split(",") if k.strip()}
        if unknown := sorted(named - kinds):
            raise ValueError(
                f"unknown kind {', '.join(unknown)}; use a comma-separated list of "
                f"{', '.join(sorted(kinds - {'all'}))}, or 'all', or leave it empty"
            )
        return ",".join(sorted(named))

    @field_validator("outcome_checkpoints")
    @classmethod
    def _check_outcome_checkpoints(cls, value: str) -> str:
        try:
            days = {int(d) for d in value.split(",") if d.strip()}
        except ValueError:
            raise ValueError(
                f"{value!r} is not a list of days; write e.g. 1,3,7,14 (whole days, 1–28)"
            ) from None
        if any(not 1 <= d <= 28 for d in days):
            raise ValueError(f"{value!r}: each day must be from 1 to 28; e.g. 1,3,7,14")
        return ",".join(str(d) for d in sorted(days | {7}))

    @property
    def checkpoint_days(self) -> tuple[int, ...]:
        return tuple(int(d) for d in self.outcome_checkpoints.split(","))

    def suggestion_needs_approval(self, kind: str) -> bool:
        named = set(self.suggestion_approval.split(",")) - {""}
        return "all" in named or kind in named

    @property
    def stale_after_minutes(self) -> int:
        return self.scheduler_stale_minutes or 2 * self.scheduler_sync_minutes

    @model_validator(mode="after")
    def _check_webhooks(self) -> Settings:
        from core.notify.channels import check_webhook_url

        for name in ("slack_webhook_url", "webhook_url"):
            value = getattr(self, name)
            if value is not None:
                check_webhook_url(value.get_secret_value(), f"REX_{name.upper()}")
        if self.webhook_url is not None and self.webhook_secret is None:
            raise ValueError(
                "REX_WEBHOOK_URL is set without REX_WEBHOOK_SECRET: webhooks are signed; "
                "set a long random secret (and give it to the receiver)"
            )
        return self

    @field_validator("team_events")
    @classmethod
    def _check_team_events(cls, value: str) -> str:
        from core.notify.events import event_kinds

        return ",".join(event_kinds(value, field="REX_TEAM_EVENTS"))

    @property
    def link_base(self) -> str:
        """Where links in notifications point: REX_PUBLIC_URL, or the UI's own address."""
        if self.public_url:
            return self.public_url.rstrip("/")
        host = "127.0.0.1" if self.ui_address in ("0.0.0.0", "::") else self.ui_address
        return f"http://{host}:{self.ui_port}"

    @property
    def key_file(self) -> Path:
        return self.secret_key_file or self.data_dir / "secret.key"


def normalise_database_url(url: str) -> str:
    """Accept the common spellings of a PostgreSQL URL and use the psycopg 3 driver."""
    url = url.strip()
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()


def reload_settings() -> Settings:
    """Forget the cached settings (after the environment changed) and read them again."""
    get_settings.cache_clear()
    return get_settings()


def is_loopback(host: str) -> bool:
    """Is this host this machine only (localhost, 127.0.0.0/8, ::1)? A Graph URL on
    loopback is a sandbox; a UI address on loopback is unreachable from the network."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
