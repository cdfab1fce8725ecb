"""The data model (SQLAlchemy 2 typed ORM). Alembic owns the schema: see migrations/.

Conventions:
* Budgets and bids are integers in the currency's minor unit, as Meta sends them
  (`*_minor`). Reported money (spend, revenue) is stored in micros of the major unit
  (`*_micros`): exact, summable in SQL, the same for every currency.
* Timestamps are `UTCDateTime` (tz-aware UTC on both databases). Metric dates are
  the ad account's local dates (`Date`).
* Statuses and levels are Rex's enums (core/enums.py, re-exported here), stored as
  their lower-case values in the VARCHAR columns they always were (`string_enum`).
* Table names the seed system's operators query are kept as they were.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.ext.hybrid import hybrid_property
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.sql.elements import ColumnElement

from core.db.types import JSONDocument, UTCDateTime, string_enum, utcnow
from core.enums import UNSETTLED as UNSETTLED  # re-exported, with the enums below
from core.enums import (
    ActionStatus,
    ApprovalStatus,
    DeliveryStatus,
    ExecutionStatus,
    Level,
    RuleStatus,
    SuggestionStatus,
    SyncStatus,
    TokenStatus,
)

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSONDocument}


# --------------------------------------------------------------------------- people


class User(Base):
    """A person who signs in to Rex (core/access). `email` is stored lower-case; a user
    from single sign-on has no `password_hash`. Users are disabled, never deleted: the
    record keeps naming them."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    password_hash: Mapped[str | None] = mapped_column(Text)  # argon2id, PHC string
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    disabled_at: Mapped[datetime | None]
    failed_attempts: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    locked_until: Mapped[datetime | None]  # no sign-in before this (slowed, or locked out)
    last_sign_in_at: Mapped[datetime | None]
    password_changed_at: Mapped[datetime | None]


class UserGrant(Base):
    """A role a user holds on one ad account (core/access/roles.py)."""

    __tablename__ = "user_grants"
    __table_args__ = (UniqueConstraint("user_id", "account_id", "role"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    account_id: Mapped[int] = mapped_column(ForeignKey("ad_accounts.id", ondelete="CASCADE"))
    role: Mapped[str] = mapped_column(String(20))
    granted_at: Mapped[datetime] = mapped_column(default=utcnow)
    granted_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))


class UserSession(Base):
    """A signed-in session: the browser (or CLI) holds a random token, Rex only its
    SHA-256. It ends on sign-out, at `expires_at`, or when the user is disabled."""

    __tablename__ = "user_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    via: Mapped[str] = mapped_column(String(20))  # "password", "sso"
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    ended_at: Mapped[datetime | None]
    ended_reason: Mapped[str | None] = mapped_column(String(40))


class AuditEntry(Base):
    """Who did what, when, from which session, with the old and new values. Written in
    the same transaction as the change it records; never edited."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )  # None: Rex itself (the scheduler) or an operator's bootstrap
    actor: Mapped[str] = mapped_column(String(320))  # the e-mail (or "rex"), as it was
    session_id: Mapped[int | None] = mapped_column(
        ForeignKey("user_sessions.id", ondelete="SET NULL")
    )
    via: Mapped[str] = mapped_column(String(20))  # "ui", "cli", "scheduler"
    action: Mapped[str] = mapped_column(String(60))  # "user.add", "approval.approve", …
    target_type: Mapped[str] = mapped_column(String(40))
    target_id: Mapped[str | None] = mapped_column(String(80))
    account_id: Mapped[int | None] = mapped_column(
        ForeignKey("ad_accounts.id", ondelete="SET NULL")
    )
    old_value: Mapped[dict[str, Any] | None] = mapped_column(JSONDocument)
    new_value: Mapped[dict[str, Any] | None] = mapped_column(JSONDocument)


# ------------------------------------------------------------------ accounts & entities


class AdAccount(Base):
    __tablename__ = "ad_accounts"
    __table_args__ = (UniqueConstraint("platform", "external_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    platform: Mapped[str] = mapped_column(String(20), default="meta")
    external_id: Mapped[str] = mapped_column(String(40))  # "act_…"
    name: Mapped[str] = mapped_column(String(300))
    currency: Mapped[str] = mapped_column(String(3))
    timezone_name: Mapped[str] = mapped_column(String(64))
    account_status: Mapped[int] = mapped_column(SmallInteger)
    min_daily_budget_minor: Mapped[int | None] = mapped_column(BigInteger)
    graph_url: Mapped[str | None] = mapped_column(String(500))  # None: the setting
    token_encrypted: Mapped[str] = mapped_column(Text)
    token_status: Mapped[TokenStatus] = mapped_column(
        string_enum(TokenStatus, 20), default=TokenStatus.OK
    )
    token_checked_at: Mapped[datetime | None]
    token_error: Mapped[str | None] = mapped_column(Text)
    rate_limited_until: Mapped[datetime | None]
    last_sync_at: Mapped[datetime | None]
    last_sync_status: Mapped[SyncStatus | None] = mapped_column(string_enum(SyncStatus, 20))
    last_sync_error: Mapped[str | None] = mapped_column(Text)
    # Removed from Rex: the row stays so the record (actions, approvals, executions,
    # notifications) keeps naming the account; its token is wiped and its synced data
    # deleted. Connecting the account again clears it.
    removed_at: Mapped[datetime | None]
    # Four-eyes: whoever last changed a rule cannot approve its proposals on this account.
    four_eyes: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    entities: Mapped[list[AdEntity]] = relationship(
        back_populates="account", cascade="all, delete-orphan", passive_deletes=True
    )

    @hybrid_property
    def connected(self) -> bool:
        """Not removed: listed, synced, evaluated and acted on. In a query:
        `select(AdAccount).where(AdAccount.connected)`."""
        return self.removed_at is None

    @connected.inplace.expression
    @classmethod
    def _connected_expression(cls) -> ColumnElement[bool]:
        return cls.removed_at.is_(None)


class AdEntity(Base):
    """A campaign, ad set or ad, as last read from Meta."""

    __tablename__ = "ad_entities"
    __table_args__ = (
        UniqueConstraint("account_id", "external_id"),
        Index("ix_ad_entities_account_level", "account_id", "level"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("ad_accounts.id", ondelete="CASCADE"))
    level: Mapped[Level] = mapped_column(string_enum(Level, 10))
    external_id: Mapped[str] = mapped_column(String(40))
    parent_id: Mapped[int | None] = mapped_column(
        ForeignKey("ad_entities.id", ondelete="CASCADE"), index=True
    )
    meta_campaign_id: Mapped[str | None] = mapped_column(String(40))
    meta_adset_id: Mapped[str | None] = mapped_column(String(40))
    name: Mapped[str] = mapped_column(String(400))
    status: Mapped[str] = mapped_column(String(20))
    effective_status: Mapped[str] = mapped_column(String(40))
    daily_budget_minor: Mapped[int | None] = mapped_column(BigInteger)
    lifetime_budget_minor: Mapped[int | None] = mapped_column(BigInteger)
    budget_remaining_minor: Mapped[int | None] = mapped_column(BigInteger)
    bid_amount_minor: Mapped[int | None] = mapped_column(BigInteger)
    objective: Mapped[str | None] = mapped_column(String(60))
    created_time: Mapped[datetime | None]
    updated_time: Mapped[datetime | None]
    first_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)

    account: Mapped[AdAccount] = relationship(back_populates="entities")


# ---------------------------------------------------------------------------- metrics


class _MetricColumns:
    """The on-Meta numbers every insights table carries."""

    spend_micros: Mapped[int] = mapped_column(BigInteger, default=0)
    impressions: Mapped[int] = mapped_column(BigInteger, default=0)
    clicks: Mapped[int] = mapped_column(BigInteger, default=0)
    reach: Mapped[int] = mapped_column(BigInteger, default=0)


class _OffMetaColumns:
    """Pixel purchases and their value, where Meta reports them (always, unbroken down)."""

    conversions: Mapped[int] = mapped_column(BigInteger, default=0)
    revenue_micros: Mapped[int] = mapped_column(BigInteger, default=0)


class _OffMetaColumnsOrNone:
    """Purchases and their value for breakdowns Meta may give none for: NULL there (not
    available), never 0."""

    conversions: Mapped[int | None] = mapped_column(BigInteger, default=None)
    revenue_micros: Mapped[int | None] = mapped_column(BigInteger, default=None)


METRIC_COLUMNS = (
    "spend_micros",
    "impressions",
    "clicks",
    "reach",
    "conversions",
    "revenue_micros",
)


class InsightTable(_MetricColumns, Base):
    """What every insights table holds — the daily numbers and the breakdowns — so that
    the sync can reconcile any of them by these columns (no table of its own); each
    table adds purchases and revenue, NULL-able where Meta may not give them."""

    __abstract__ = True

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("ad_accounts.id", ondelete="CASCADE"))
    entity_id: Mapped[int] = mapped_column(ForeignKey("ad_entities.id", ondelete="CASCADE"))
    date: Mapped[date] = mapped_column(Date)


class AdMetric(_OffMetaColumns, InsightTable):
    """Daily numbers per entity (campaign, ad set and ad levels) and account-local date."""

    __tablename__ = "ad_metrics"
    __table_args__ = (
        UniqueConstraint("entity_id", "date"),
        Index("ix_ad_metrics_account_date", "account_id", "date"),
    )


class AdDemographicInsight(_OffMetaColumns, InsightTable):
    __tablename__ = "ad_demographic_insights"
    __table_args__ = (
        UniqueConstraint("entity_id", "date", "age", "gender"),
        Index("ix_ad_demographic_insights_account_date", "account_id", "date"),
    )

    age: Mapped[str] = mapped_column(String(20))
    gender: Mapped[str] = mapped_column(String(20))


class AdPlacementInsight(_OffMetaColumns, InsightTable):
    __tablename__ = "ad_placement_insights"
    __table_args__ = (
        UniqueConstraint(
            "entity_id", "date", "publisher_platform", "platform_position", "impression_device"
        ),
        Index("ix_ad_placement_insights_account_date", "account_id", "date"),
    )

    publisher_platform: Mapped[str] = mapped_column(String(40))
    platform_position: Mapped[str] = mapped_column(String(60))
    impression_device: Mapped[str] = mapped_column(String(40))


class AdGeographicInsight(_OffMetaColumnsOrNone, InsightTable):
    """One table for the three geographic breakdowns: `geo_type` country | region | dma.
    Purchases and revenue are NULL for regions and DMAs (Meta does not report them)."""

    __tablename__ = "ad_geographic_insights"
    __table_args__ = (
        UniqueConstraint("entity_id", "date", "geo_type", "geo_value"),
        Index("ix_ad_geographic_insights_account_date", "account_id", "date"),
    )

    geo_type: Mapped[str] = mapped_column(String(10))
    geo_value: Mapped[str] = mapped_column(String(200))


class AdHourlyInsight(_OffMetaColumnsOrNone, InsightTable):
    """Hour of day (0–23) in the advertiser's time zone, per account-local date; no
    purchases or revenue (Meta does not report them by hour)."""

    __tablename__ = "ad_hourly_insights"
    __table_args__ = (
        UniqueConstraint("entity_id", "date", "hour"),
        Index("ix_ad_hourly_insights_account_date", "account_id", "date"),
    )

    hour: Mapped[int] = mapped_column(SmallInteger)


class SyncRun(Base):
    """One sync of one account: what was read, how long it took, how it ended."""

    __tablename__ = "sync_runs"
    __table_args__ = (Index("ix_sync_runs_account_started", "account_id", "started_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("ad_accounts.id", ondelete="CASCADE"))
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]
    status: Mapped[SyncStatus] = mapped_column(
        string_enum(SyncStatus, 20), default=SyncStatus.RUNNING
    )
    since: Mapped[date | None] = mapped_column(Date)
    until: Mapped[date | None] = mapped_column(Date)
    counts: Mapped[dict[str, Any]] = mapped_column(default=dict)
    error: Mapped[str | None] = mapped_column(Text)
    owner: Mapped[str | None] = mapped_column(String(200))  # host:pid of the process syncing


# ------------------------------------------------------------------------- automation


class AutomationRule(Base):
    __tablename__ = "automation_rules"

    id: Mapped[int] = mapped_column(primary_key=True)
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    name: Mapped[str] = mapped_column(String(200))
    level: Mapped[Level] = mapped_column(string_enum(Level, 10))
    document: Mapped[dict[str, Any]]
    status: Mapped[RuleStatus] = mapped_column(
        string_enum(RuleStatus, 30), default=RuleStatus.DRAFT
    )
    check_frequency_minutes: Mapped[int] = mapped_column(Integer, default=60)
    next_execution_at: Mapped[datetime | None] = mapped_column(index=True)
    last_execution_at: Mapped[datetime | None]
    version: Mapped[int] = mapped_column(Integer, default=1)
    claimed_by: Mapped[str | None] = mapped_column(String(200))
    claim_expires_at: Mapped[datetime | None]
    # Deleted: status `deleted`, never due, not listed; the record names it still.
    deleted_at: Mapped[datetime | None]
    # the user who saved the current version (None: Rex itself, or saved before users
    # existed); a plain id: users are disabled, never deleted (migration 0011)
    updated_by_id: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class AutomationRuleVersion(Base):
    """Every saved document of a rule, so a change can be seen and undone."""

    __tablename__ = "automation_rule_versions"
    __table_args__ = (UniqueConstraint("rule_id", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    rule_id: Mapped[int] = mapped_column(ForeignKey("automation_rules.id", ondelete="RESTRICT"))
    version: Mapped[int] = mapped_column(Integer)
    document: Mapped[dict[str, Any]]
    saved_by_id: Mapped[int | None] = mapped_column(Integer)  # who saved it (as updated_by_id)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class RuleExecution(Base):
    __tablename__ = "rule_executions"
    __table_args__ = (Index("ix_rule_executions_rule_started", "rule_id", "started_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    rule_id: Mapped[int] = mapped_column(ForeignKey("automation_rules.id", ondelete="RESTRICT"))
    rule_version: Mapped[int] = mapped_column(Integer, default=1)
    started_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    finished_at: Mapped[datetime | None]
    duration_ms: Mapped[int | None] = mapped_column(Integer)
    entities_checked: Mapped[int] = mapped_column(Integer, default=0)
    entities_matched: Mapped[int] = mapped_column(Integer, default=0)
    actions_taken: Mapped[int] = mapped_column(Integer, default=0)
    actions_skipped: Mapped[int] = mapped_column(Integer, default=0)
    actions_queued: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    actions_would: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    status: Mapped[ExecutionStatus] = mapped_column(
        string_enum(ExecutionStatus, 20), default=ExecutionStatus.RUNNING
    )
    error: Mapped[str | None] = mapped_column(Text)
    trace: Mapped[dict[str, Any] | None] = mapped_column(JSONDocument)


class ActionHistory(Base):
    """Every action Rex took or would take on Meta: an intent row first, the outcome after."""

    __tablename__ = "action_history"
    __table_args__ = (
        Index("ix_action_history_created", "created_at"),
        Index("ix_action_history_status", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    rule_id: Mapped[int | None] = mapped_column(
        ForeignKey("automation_rules.id", ondelete="RESTRICT")
    )
    execution_id: Mapped[int | None] = mapped_column(
        ForeignKey("rule_executions.id", ondelete="SET NULL")
    )
    account_id: Mapped[int] = mapped_column(ForeignKey("ad_accounts.id", ondelete="RESTRICT"))
    entity_id: Mapped[int | None] = mapped_column(ForeignKey("ad_entities.id", ondelete="SET NULL"))
    entity_name: Mapped[str | None] = mapped_column(String(400))
    action_type: Mapped[str] = mapped_column(String(30))
    old_value: Mapped[str | None] = mapped_column(Text)
    new_value: Mapped[str | None] = mapped_column(Text)
    status: Mapped[ActionStatus] = mapped_column(string_enum(ActionStatus, 20))
    error_message: Mapped[str | None] = mapped_column(Text)
    error_code: Mapped[int | None] = mapped_column(Integer)
    idempotency_key: Mapped[str | None] = mapped_column(String(200), unique=True)
    details: Mapped[dict[str, Any] | None] = mapped_column(JSONDocument)
    can_rollback: Mapped[bool] = mapped_column(Boolean, default=False)
    rollback_of_id: Mapped[int | None] = mapped_column(
        ForeignKey("action_history.id", ondelete="SET NULL")
    )
    rolled_back_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("action_history.id", ondelete="SET NULL")
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None]  # just before the call went out; None: never sent
    finished_at: Mapped[datetime | None]
    announced_at: Mapped[datetime | None]  # a failure told to people (core/notify/announce.py)


class PendingAction(Base):
    """The approval queue: a proposed change waiting for a person."""

    __tablename__ = "pending_actions"
    __table_args__ = (Index("ix_pending_actions_status_expires", "status", "expires_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    rule_id: Mapped[int | None] = mapped_column(
        ForeignKey("automation_rules.id", ondelete="RESTRICT")
    )
    execution_id: Mapped[int | None] = mapped_column(
        ForeignKey("rule_executions.id", ondelete="SET NULL")
    )
    account_id: Mapped[int] = mapped_column(ForeignKey("ad_accounts.id", ondelete="RESTRICT"))
    entity_id: Mapped[int | None] = mapped_column(ForeignKey("ad_entities.id", ondelete="SET NULL"))
    action_type: Mapped[str] = mapped_column(String(30))
    proposal: Mapped[dict[str, Any]]
    justification: Mapped[dict[str, Any] | None] = mapped_column(JSONDocument)
    status: Mapped[ApprovalStatus] = mapped_column(
        string_enum(ApprovalStatus, 20), default=ApprovalStatus.PENDING
    )
    expires_at: Mapped[datetime]
    decided_by: Mapped[str | None] = mapped_column(String(200))
    decided_at: Mapped[datetime | None]
    decision_reason: Mapped[str | None] = mapped_column(Text)
    action_id: Mapped[int | None] = mapped_column(
        ForeignKey("action_history.id", ondelete="SET NULL")
    )
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    announced_at: Mapped[datetime | None]  # its approvers told (core/notify/announce.py)


class Notification(Base):
    """Something people are told (core/notify): a rule's notify action, a failed action,
    an account held, proposals waiting, a digest. `user_id` is set for one person's own
    (a digest); otherwise the people with access to `account_id` are told. Fanned out
    once (`fanned_out_at`) into an inbox receipt per person and a delivery per channel."""

    __tablename__ = "notifications"
    __table_args__ = (
        Index("ix_notifications_created", "created_at"),
        Index("ix_notifications_fanned_out_at", "fanned_out_at"),
        Index("uq_notifications_event_key", "event_key", unique=True),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    account_id: Mapped[int | None] = mapped_column(
        ForeignKey("ad_accounts.id", ondelete="RESTRICT")
    )
    rule_id: Mapped[int | None] = mapped_column(
        ForeignKey("automation_rules.id", ondelete="RESTRICT")
    )
    kind: Mapped[str] = mapped_column(String(40))
    title: Mapped[str] = mapped_column(String(300))
    body: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    read_at: Mapped[datetime | None]  # the seed's; read state is per person (receipts)
    link: Mapped[str | None] = mapped_column(String(500))  # the page, e.g. "approvals"
    details: Mapped[dict[str, Any] | None] = mapped_column(JSONDocument)
    event_key: Mapped[str | None] = mapped_column(String(200))  # made once
    fanned_out_at: Mapped[datetime | None]


class NotificationReceipt(Base):
    """A notification in one person's inbox, read or not."""

    __tablename__ = "notification_receipts"
    __table_args__ = (
        UniqueConstraint("notification_id", "user_id"),
        Index("ix_notification_receipts_user_read", "user_id", "read_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    notification_id: Mapped[int] = mapped_column(
        ForeignKey("notifications.id", ondelete="RESTRICT")
    )
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    read_at: Mapped[datetime | None]


class NotificationDelivery(Base):
    """The outbox: one notification to one recipient on one channel, delivered at most
    once (core/notify/deliver.py). `target`: the e-mail address it goes to, or "team"
    (the channel in the settings) or "user" (the person's own webhook)."""

    __tablename__ = "notification_deliveries"
    __table_args__ = (Index("ix_notification_deliveries_due", "status", "not_before"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    notification_id: Mapped[int] = mapped_column(
        ForeignKey("notifications.id", ondelete="RESTRICT"), index=True
    )
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    channel: Mapped[str] = mapped_column(String(20))
    target: Mapped[str] = mapped_column(String(320))
    idempotency_key: Mapped[str] = mapped_column(String(64), unique=True)
    status: Mapped[DeliveryStatus] = mapped_column(
        string_enum(DeliveryStatus, 20), default=DeliveryStatus.PENDING
    )
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    not_before: Mapped[datetime] = mapped_column(default=utcnow)
    claimed_by: Mapped[str | None] = mapped_column(String(200))
    claim_expires_at: Mapped[datetime | None]
    in_flight_at: Mapped[datetime | None]  # just before the message left
    sent_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class NotificationPreference(Base):
    """What one person wants to hear, and where (core/notify/preferences.py). No row:
    the defaults (every event, by e-mail when Rex can send mail, no digest)."""

    __tablename__ = "notification_preferences"

    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    muted: Mapped[list[str]] = mapped_column(JSONDocument, default=list)  # event kinds
    channels: Mapped[list[str]] = mapped_column(JSONDocument, default=list)
    digest: Mapped[bool] = mapped_column(Boolean, default=False)
    digest_hour: Mapped[int] = mapped_column(SmallInteger, default=8)
    time_zone: Mapped[str] = mapped_column(String(64), default="UTC")
    quiet_start: Mapped[str | None] = mapped_column(String(5))  # "22:00", the person's time
    quiet_end: Mapped[str | None] = mapped_column(String(5))
    slack_url: Mapped[str | None] = mapped_column(Text)  # encrypted (core.crypto)
    webhook_url: Mapped[str | None] = mapped_column(Text)  # encrypted
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


# ------------------------------------------------------------------------ suggestions


class RexSuggestion(Base):
    """A change Rex suggests from what an ad set's breakdowns (or daily numbers) show:
    the finding, its evidence, the change it proposes and its life (core/suggestions/).
    Money in the account currency's minor unit; rows from before 0008 have only the
    seed's columns (kind, title, detail, confidence)."""

    __tablename__ = "rex_suggestions"
    __table_args__ = (
        Index("ix_rex_suggestions_account_status", "account_id", "status"),
        # never two open suggestions for the same change
        Index(
            "uq_rex_suggestions_open_fingerprint",
            "fingerprint",
            unique=True,
            sqlite_where=text("status IN ('new', 'queued')"),
            postgresql_where=text("status IN ('new', 'queued')"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("ad_accounts.id", ondelete="CASCADE"))
    entity_id: Mapped[int | None] = mapped_column(ForeignKey("ad_entities.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(60))
    title: Mapped[str] = mapped_column(String(300))
    detail: Mapped[dict[str, Any]]  # the why text and what the page shows besides
    confidence: Mapped[float | None]
    status: Mapped[SuggestionStatus] = mapped_column(
        string_enum(SuggestionStatus, 20), default=SuggestionStatus.NEW
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    applied_at: Mapped[datetime | None]
    level: Mapped[Level | None] = mapped_column(string_enum(Level, 10))
    dimension: Mapped[str | None] = mapped_column(String(40))
    segment: Mapped[list[str] | None] = mapped_column(JSONDocument)  # as Meta spells it
    direction: Mapped[str | None] = mapped_column(String(10))  # worse | better
    # what makes two suggestions "the same change": account, entity, kind, segment, edit
    fingerprint: Mapped[str | None] = mapped_column(String(300))
    action: Mapped[dict[str, Any] | None] = mapped_column(JSONDocument)  # type, change, words
    evidence: Mapped[dict[str, Any] | None] = mapped_column(JSONDocument)
    currency: Mapped[str | None] = mapped_column(String(3))
    weekly_profit_minor: Mapped[int | None] = mapped_column(BigInteger)
    weekly_profit_low_minor: Mapped[int | None] = mapped_column(BigInteger)
    weekly_profit_high_minor: Mapped[int | None] = mapped_column(BigInteger)
    reason: Mapped[str | None] = mapped_column(Text)  # why dismissed, expired, superseded
    decided_by: Mapped[str | None] = mapped_column(String(200))
    superseded_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("rex_suggestions.id", ondelete="SET NULL")
    )
    approval_id: Mapped[int | None] = mapped_column(
        ForeignKey("pending_actions.id", ondelete="SET NULL")
    )
    action_id: Mapped[int | None] = mapped_column(
        ForeignKey("action_history.id", ondelete="SET NULL")
    )
    updated_at: Mapped[datetime | None]


class RexSuggestionEvent(Base):
    """Every change of a suggestion's status: from what, to what, by whom, why."""

    __tablename__ = "rex_suggestion_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    suggestion_id: Mapped[int] = mapped_column(
        ForeignKey("rex_suggestions.id", ondelete="CASCADE"), index=True
    )
    at: Mapped[datetime] = mapped_column(default=utcnow)
    previous: Mapped[SuggestionStatus | None] = mapped_column(string_enum(SuggestionStatus, 20))
    status: Mapped[SuggestionStatus] = mapped_column(string_enum(SuggestionStatus, 20))
    by: Mapped[str] = mapped_column(String(200))
    reason: Mapped[str | None] = mapped_column(Text)


class RexSuggestionPerformance(Base):
    """What an applied change did (core/outcomes/), for every applied suggestion and
    every succeeded rule action: the seed's baseline, current metrics, deltas,
    `is_improving` and last comparison — here the headline checkpoint's (7 days), with
    the effects estimated against a comparison group — and each checkpoint's in
    `rex_outcome_checkpoints`. Rows from before 0009 have only a suggestion's baseline."""

    __tablename__ = "rex_suggestion_performance"

    id: Mapped[int] = mapped_column(primary_key=True)
    suggestion_id: Mapped[int | None] = mapped_column(
        ForeignKey("rex_suggestions.id", ondelete="CASCADE"), index=True
    )
    action_id: Mapped[int | None] = mapped_column(
        ForeignKey("action_history.id", ondelete="SET NULL"), unique=True
    )
    account_id: Mapped[int | None] = mapped_column(
        ForeignKey("ad_accounts.id", ondelete="RESTRICT"), index=True
    )
    entity_id: Mapped[int | None] = mapped_column(ForeignKey("ad_entities.id", ondelete="SET NULL"))
    kind: Mapped[str | None] = mapped_column(String(30))  # a suggestion's kind, or the action's
    changed_on: Mapped[date | None] = mapped_column(Date)  # account-local day of the change
    baseline_metrics: Mapped[dict[str, Any]]
    current_metrics: Mapped[dict[str, Any] | None] = mapped_column(JSONDocument)
    deltas: Mapped[dict[str, Any] | None] = mapped_column(JSONDocument)
    effects: Mapped[dict[str, Any] | None] = mapped_column(JSONDocument)
    verdict: Mapped[str | None] = mapped_column(String(40))
    learning: Mapped[bool | None]
    is_improving: Mapped[bool | None]
    last_comparison_at: Mapped[datetime | None]


class RexOutcomeCheckpoint(Base):
    """One checkpoint of an outcome: the change's effect over the `days` after it,
    measured once those days' conversions had settled — what the entity did, what it
    would have done anyway (the comparison group), the effects with their intervals, the
    plain before/after deltas, the verdict, and whether Meta's learning phase was in it."""

    __tablename__ = "rex_outcome_checkpoints"
    __table_args__ = (UniqueConstraint("performance_id", "days"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    performance_id: Mapped[int] = mapped_column(
        ForeignKey("rex_suggestion_performance.id", ondelete="CASCADE")
    )
    days: Mapped[int] = mapped_column(Integer)
    measured_at: Mapped[datetime] = mapped_column(default=utcnow)
    learning: Mapped[bool] = mapped_column(Boolean, default=False)
    current_metrics: Mapped[dict[str, Any] | None] = mapped_column(JSONDocument)
    expected_metrics: Mapped[dict[str, Any] | None] = mapped_column(JSONDocument)
    deltas: Mapped[dict[str, Any] | None] = mapped_column(JSONDocument)
    effects: Mapped[dict[str, Any] | None] = mapped_column(JSONDocument)
    comparison: Mapped[dict[str, Any] | None] = mapped_column(JSONDocument)
    is_improving: Mapped[bool | None]
    verdict: Mapped[str] = mapped_column(String(40))
    reason: Mapped[str | None] = mapped_column(Text)


# -------------------------------------------------------------------------- operations


class SchedulerHeartbeat(Base):
    __tablename__ = "scheduler_heartbeats"
    __table_args__ = (UniqueConstraint("host", "pid", "started_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    host: Mapped[str] = mapped_column(String(200))
    pid: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_tick_at: Mapped[datetime | None]
    stopped_at: Mapped[datetime | None]
    jobs: Mapped[dict[str, Any]] = mapped_column(default=dict)


class SchedulerEvent(Base):
    """What the scheduler must not only log: job errors and missed runs (for the UI)."""

    __tablename__ = "scheduler_events"
    __table_args__ = (Index("ix_scheduler_events_at", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    host: Mapped[str] = mapped_column(String(200))
    pid: Mapped[int] = mapped_column(Integer)
    job_id: Mapped[str] = mapped_column(String(60))
    kind: Mapped[str] = mapped_column(String(20))  # error | missed
    message: Mapped[str | None] = mapped_column(Text)


class SchedulerLease(Base):
    """A named lease, so that one replica at a time does a piece of shared work."""

    __tablename__ = "scheduler_leases"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    holder: Mapped[str | None] = mapped_column(String(200))
    expires_at: Mapped[datetime | None]
