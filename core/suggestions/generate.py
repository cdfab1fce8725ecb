"""Generating suggestions: an account's evidence → findings → proposed changes → the record.

For each connected account (or one): the delivering ad sets' segments over the last
`PERIOD_DAYS` whole days (core/suggestions/evidence.py) are tested, each ad set's
segments at once so that the false discovery rate holds across them
(core/suggestions/detect.py `adset_patterns`); each discovery becomes a suggestion:

* a segment that loses money (or, where Meta reports no purchases, whose clicks cost
  credibly more) → the change that stops delivering to it, where Meta's targeting can
  say so: an age band at the edge of the range, a gender, a platform, a device, a
  country (the full new spec, made from the spec read from Meta now: a write replaces
  it); an ad set's expensive hours together → an `adset_schedule` leaving them out, on
  an ad set with a lifetime budget (Meta takes a schedule nowhere else);
* a segment that wins — and a loser no targeting field can name alone (one age × gender
  cell, a position on one device, a region, a DMA; hours on a daily budget) — is said
  with its numbers and what it justifies, without a change to apply;
* ad sets whose returns hold up as spend rises beside ones whose marginal return fell →
  a budget shift between them (core/suggestions/budget.py).

Each carries its evidence, the weekly profit of acting with its interval, and its
confidence (core/suggestions/confidence.py); `records.reconcile` brings the record in
line (refresh, supersede, expire, keep dismissed ones dismissed).
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import Engine, select

from core.access.actor import Actor
from core.access.roles import Permission
from core.accounts import client_for
from core.actions.changes import (
    BudgetChange,
    ScheduleChange,
    TargetingChange,
    restarts_learning,
    stored,
)
from core.actions.kinds import ActionType
from core.actions.targeting import (
    ExcludeAgeBands,
    ExcludeCountry,
    ExcludeGender,
    ExcludePlacement,
    TargetingEdit,
    TargetingEditError,
    edit_spec,
    hours_of,
    hours_words,
    schedule_for_hours,
    schedule_words,
    spec_words,
)
from core.db import read_session
from core.db.models import ActionHistory, ActionStatus, AdAccount, AdEntity
from core.db.types import utcnow
from core.enums import Level
from core.errors import NotFoundError, RexError
from core.labels import segment_name
from core.meta import GraphError, RateLimitedError, TokenInvalidError
from core.meta.objects import ADSET_DELIVERY_FIELDS, EntityInfo
from core.money import decimals, format_minor, format_money, offset
from core.outcomes.learn import Learned, recalibrated
from core.outcomes.record import kind_confidence
from core.rules.windows import local_today
from core.suggestions import budget
from core.suggestions import confidence as prior
from core.suggestions.detect import (
    GROUPINGS,
    KIND_OF_DIMENSION,
    Finding,
    Q,
    SegmentSums,
    adset_patterns,
    expand,
)
from core.suggestions.evidence import AdSetEvidence, Period, account_evidence, daily_series
from core.suggestions.records import Found, Reconciled, reconcile
from core.suggestions.stats import Interval

log = logging.getLogger(__name__)
MAX_PAYBACK_DAYS = 28  # an edit whose gain takes longer to pay its learning back: not made
Progress = Callable[[int, int, str], None]  # done, of, which account


@dataclass
class Generated:
    """What a generation did, per account external id."""

    accounts: dict[str, Reconciled] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)  # account → why not generated

    @property
    def total(self) -> Reconciled:
        whole = Reconciled()
        for done in self.accounts.values():
            whole.add(done)
        return whole


def generate(
    account_id: int | str | None = None,
    *,
    engine: Engine | None = None,
    now: datetime | None = None,
    by: Actor,
    progress: Progress | None = None,
) -> Generated:
    """Find the suggestions of one account (id or act_…) or of every connected one `by`
    may read (Rex itself: all) and bring the record in line."""
    now = now or utcnow()
    readable = by.account_ids(Permission.READ)
    with read_session(engine) as session:
        query = select(AdAccount).where(AdAccount.connected).order_by(AdAccount.id)
        if readable is not None:
            query = query.where(AdAccount.id.in_(readable))
        accounts = list(session.scalars(query))
    if account_id is not None:
        wanted = str(account_id)
        accounts = [a for a in accounts if wanted in (str(a.id), a.external_id)]
        if not accounts:
            raise NotFoundError(f"no connected account {account_id}")
    result = Generated()
    kinds = kind_confidence(engine)  # what each kind learned, read once for every account
    for index, account in enumerate(accounts):
        if progress:
            progress(index, len(accounts), account.external_id)
        try:
            found = find_for_account(account, now=now, engine=engine, kinds=kinds)
        except (GraphError, RexError) as error:
            result.skipped[account.external_id] = str(error)
            log.warning("suggestions for %s not generated: %s", account.external_id, error)
            continue
        result.accounts[account.external_id] = reconcile(account, found, now=now, by=by.label,
                                                         engine=engine)  # fmt: skip
    if progress:
        progress(len(accounts), len(accounts), "")
    return result


def find_for_account(
    account: AdAccount,
    *,
    now: datetime,
    engine: Engine | None = None,
    kinds: dict[str, Learned] | None = None,
) -> list[Found]:
    """The suggestions the account's data support now (not yet on the record); `kinds`:
    what each suggestion kind learned from outcomes (read here when not given)."""
    period = Period.ending_yesterday(account, now)
    evidence = account_evidence(account, period, engine=engine)
    by_adset: dict[int, list[Finding]] = {}
    for adset in evidence:
        tables = [t for dimension, segments in adset.tables.items()
                  for t in expand(dimension, segments)]  # fmt: skip
        findings = adset_patterns(tables, days=period.days)
        if findings:
            by_adset[adset.entity.id] = _without_covered_cells(findings)
    delivery = _delivery(account, [e.entity for e in evidence if e.entity.id in by_adset])
    found: list[Found] = []
    for adset in evidence:
        mine = by_adset.get(adset.entity.id, [])
        hours = [f for f in mine if f.dimension == "hour" and f.direction == "worse"]
        together = {id(f) for f in hours}
        for finding in mine:
            if id(finding) not in together:
                found.append(_segment(account, adset, finding, delivery, period))
        if hours:
            found.append(_hours(account, adset, hours, delivery, period))
    found.extend(_budget_shifts(account, period, engine))
    learned = kinds if kinds is not None else kind_confidence(engine)
    return _learned([f for f in found if _worth_it(f)], learned)


def _learned(found: list[Found], kinds: dict[str, Learned]) -> list[Found]:
    """Each suggestion's confidence moved by what its kind learned from measured outcomes
    (core/outcomes/learn.py); the engine's prior kept beside it. A kind nothing of which
    was measured yet keeps its prior."""
    for item in found:
        kind = kinds.get(item.values["kind"])
        detail = item.values["detail"]
        detail["confidence_prior"] = item.values["confidence"]
        if kind is not None and kind.outcomes:
            item.values["confidence"] = round(recalibrated(item.values["confidence"], kind), 4)
            detail["learned"] = {"rate": round(kind.rate.estimate, 4),
                                 "low": round(kind.rate.low, 4),
                                 "high": round(kind.rate.high, 4),
                                 "outcomes": kind.outcomes}  # fmt: skip
    return found


def _without_covered_cells(findings: list[Finding]) -> list[Finding]:
    """An ad set's findings without the cells a grouping found in the same direction says
    already (Audience Network on Android phones, when Audience Network is found): one
    suggestion per pattern, the one Meta's targeting can act on."""
    groups = {
        (cell, parts, f.key, f.direction)
        for f in findings
        for cell, groupings in GROUPINGS.items()
        for name, parts in groupings
        if f.dimension == name
    }
    return [
        f
        for f in findings
        if not any(
            (f.dimension, parts, tuple(f.key[i] for i in parts), f.direction) in groups
            for _name, parts in GROUPINGS.get(f.dimension, ())
        )
    ]


def _worth_it(found: Found) -> bool:
    """A change that restarts learning is suggested only if its expected gain pays the
    learning back within `MAX_PAYBACK_DAYS`; a smaller one is not worth the edit."""
    payback = found.values["detail"].get("payback_days")
    return payback is None or payback <= MAX_PAYBACK_DAYS


# ----------------------------------------------------------------- one suggestion


def _segment(
    account: AdAccount,
    adset: AdSetEvidence,
    finding: Finding,
    delivery: dict[str, EntityInfo | str],
    period: Period,
) -> Found:
    kind = KIND_OF_DIMENSION[finding.dimension]
    name = segment_name(finding.dimension, finding.key)
    edit = _edit_for(finding) if finding.direction == "worse" else None
    action, why_not = None, _no_edit_reason(finding)
    if edit is not None:
        action, why_not = _targeting_action(adset, edit, delivery, name)
    cost = prior.learning_cost(_pace(adset, period)) if action else 0.0
    title = _title(finding, name, adset.entity.name)
    return _found(
        account, adset.entity, kind, finding.dimension, finding.key, finding.direction,
        action=action, why_not=why_not, gain=finding.weekly_profit, cost=cost,
        evidence=_evidence(account, finding, period), title=title,
        why=_why(account, finding, name, adset, cost, why_not),
    )  # fmt: skip


def _hours(
    account: AdAccount,
    adset: AdSetEvidence,
    hours: Sequence[Finding],
    delivery: dict[str, EntityInfo | str],
    period: Period,
) -> Found:
    """An ad set's expensive hours, together: one schedule that leaves them all out."""
    bad = sorted(int(f.key[0]) for f in hours)
    keep = [h for h in range(24) if h not in bad]
    gain = _sum_intervals([f.weekly_profit for f in hours])
    segment_sums = _combined([f.segment for f in hours])
    rest = _combined([s for s in adset.tables.get("hour", []) if int(s.key[0]) not in bad])
    action, why_not = None, None
    info = delivery.get(adset.entity.external_id)
    if isinstance(info, str):
        why_not = info
    elif info is None or not info.lifetime_budget_minor:
        action, why_not = _hours_rules(account, adset.entity, bad)
    else:
        new = schedule_for_hours(keep)
        old = list(info.adset_schedule) if info.adset_schedule else None
        if hours_of(old) == frozenset(keep):
            why_not = "its schedule already leaves these hours out"
        else:
            change = ScheduleChange(level=Level.ADSET, entity=adset.entity.external_id,
                                    old=old, new=new, summary=schedule_words(new))  # fmt: skip
            action = {
                "type": ActionType.SET_SCHEDULE.value,
                "hours": keep,
                "change": stored(change),
                "old": schedule_words(old),
                "new": schedule_words(new),
                "summary": f"deliver only {hours_words(keep)}",
            }
    # a schedule is a significant edit (learning restarts); pausing by the hour is not
    restarts = action is not None and action["type"] == ActionType.SET_SCHEDULE
    cost = prior.learning_cost(_pace(adset, period)) if restarts else 0.0
    ratio = _ratio(segment_sums, rest)
    words = hours_words(bad)
    evidence = {
        "period": _period(period),
        "basis": "clicks",
        "measure": "cost per click",
        "hours": bad,
        "segment": _side(account, segment_sums, None),
        "rest": _side(account, rest, None),
        "hourly": [
            {"hour": int(f.key[0]), **_evidence(account, f, period)}
            for f in sorted(hours, key=lambda f: int(f.key[0]))
        ],
    }
    cpc, rest_cpc = _per(segment_sums.spend, segment_sums.clicks), _per(rest.spend, rest.clicks)
    why = (
        f"In {words} (the account's time zone) a click cost {_money(account, cpc)}, against "
        f"{_money(account, rest_cpc)} in the other hours — {ratio:.1f}× as much over the last "
        f"{period.days} days. Meta reports no purchases by hour, so this is judged on clicks "
        f"per spend. Leaving these hours out saves about {_money(account, gain.estimate)} a "
        f"week for the same clicks (90 % interval {_money(account, gain.low)} to "
        f"{_money(account, gain.high)}). {_learning_words(account, cost, gain, why_not)}"
    ).strip()
    return _found(
        account, adset.entity, "dayparting", "hour", tuple(str(h) for h in bad), "worse",
        action=action, why_not=why_not, gain=gain, cost=cost, evidence=evidence,
        title=f"Leave out {words} in {adset.entity.name}", why=why,
    )  # fmt: skip


def _hours_rules(
    account: AdAccount, adset: AdEntity, bad: Sequence[int]
) -> tuple[dict[str, Any] | None, str | None]:
    """For an ad set with a daily budget (Meta takes a schedule only with a lifetime one):
    a Rex-side hours window — a rule that pauses it when the expensive hours begin and
    one that resumes it when they end — made in *Test first* mode (dry run), so that the
    marketer sees what they would do before going live. Only for one block of hours
    that does not cross midnight (a rule's hours are one [start, end) range)."""
    start, end = bad[0], bad[-1] + 1
    if list(bad) != list(range(start, end)):
        return None, (
            "the expensive hours are not one block, and a Rex rule's hours are one range: "
            "make the rules by hand, or give the ad set a lifetime budget and an end date "
            "so that Meta takes an hours schedule"
        )
    resume = (end, 24) if end < 24 else (0, start)
    scope = {
        "account_ids": [account.external_id],
        "level": "adset",
        "filters": [{"field": "id", "op": "=", "value": adset.external_id}],
    }
    always = {"all": [{"metric": "spend", "window": "today", "op": ">=", "value": 0}]}
    safety = {"max_daily_actions": 1, "cooldown_minutes": 60, "dry_run": True}

    def rule(verb: str, hours: tuple[int, int]) -> dict[str, Any]:
        return {
            "name": f"Dayparting · {verb} {adset.name} {hours_words(range(*hours))}"[:200],
            "status": "active",
            "scope": scope,
            "conditions": always,
            "actions": [{"type": verb}],
            "schedule": {"every_minutes": 15, "hours": list(hours)},
            "safety": safety,
        }

    words = hours_words(bad)
    return {
        "type": "create_rules",
        "rules": [rule("pause", (start, end)), rule("resume", resume)],
        "old": "no hours window",
        "new": f"paused {words}",
        "summary": (
            f"two rules, made in Test first mode (dry run): pause it {words}, resume it "
            f"after — review their preview on the Rules page, then go live. The resume rule "
            "resumes the ad set every day: pause the rules too if you pause the ad set"
        ),
    }, None


def _found(
    account: AdAccount,
    entity: AdEntity,
    kind: str,
    dimension: str,
    segment: tuple[str, ...],
    direction: str,
    *,
    action: dict[str, Any] | None,
    why_not: str | None,
    gain: Interval,
    cost: float,
    evidence: dict[str, Any],
    title: str,
    why: str,
    confidence: float | None = None,
) -> Found:
    """The suggestion's record values, its subject (what it is about) and fingerprint (the
    subject and the change: the edit, the hours, the amount). `confidence` defaults to the
    prior's (core/suggestions/confidence.py)."""
    subject = "|".join(
        (account.external_id, entity.external_id, kind, dimension, ",".join(segment), direction)
    )
    keys = ("type", "edit", "hours", "amount_minor")
    change_key = json.dumps(
        {k: action[k] for k in keys if k in action} if action else None, sort_keys=True
    )
    if confidence is None:
        confidence = prior.confidence(gain, cost=cost)
    values = {
        "entity_id": entity.id,
        "kind": kind,
        "level": Level(entity.level),
        "dimension": dimension,
        "segment": list(segment),
        "direction": direction,
        "title": title[:300],
        "action": action,
        "evidence": evidence,
        "currency": account.currency,
        "weekly_profit_minor": _minor(account, gain.estimate),
        "weekly_profit_low_minor": _minor(account, gain.low),
        "weekly_profit_high_minor": _minor(account, gain.high),
        "confidence": round(confidence, 4),
        "detail": {
            "subject": subject,
            "why": why,
            "entity_name": entity.name,
            "entity_external_id": entity.external_id,
            "not_applicable": why_not if action is None else None,
            "learning_cost_minor": _minor(account, cost),
            "payback_days": _round(prior.payback_days(gain, cost=cost)) if cost else None,
            "confidence_28_days": round(
                prior.confidence(gain, cost=cost, days=prior.LONGER_DAYS), 4
            ),
        },
    }
    return Found(subject=subject, fingerprint=f"{subject}|{change_key}"[:300], values=values)


# ------------------------------------------------------------------ budget shifts


def _budget_shifts(account: AdAccount, period: Period, engine: Engine | None) -> list[Found]:
    """Budget shifts between the account's delivering ad sets (core/suggestions/budget.py),
    days in Meta's learning phase after Rex's own significant edits left out."""
    series = daily_series(account, period, engine=engine)
    if len(series) < 2:
        return []
    learning = _learning_days(account, [s.entity.id for s in series], engine)
    by_external = {s.entity.external_id: s.entity for s in series}
    inputs = [
        budget.BudgetSeries(
            s.entity.external_id,
            int(s.entity.daily_budget_minor or 0),
            tuple(
                budget.Day(d, spend, revenue, purchases, d in learning.get(s.entity.id, ()))
                for d, spend, revenue, purchases in s.days
            ),
        )  # fmt: skip
        for s in series
    ]
    shifts = budget.find_shifts(inputs, unit=offset(account.currency),
                                min_budget=account.min_daily_budget_minor or 0)  # fmt: skip
    return [_shift_found(account, shift, by_external, period) for shift in shifts]


def _shift_found(
    account: AdAccount,
    shift: budget.BudgetShift,
    entities: dict[str, AdEntity],
    period: Period,
) -> Found:
    donor, recipient = entities[shift.donor.holder], entities[shift.recipient.holder]
    steps = []
    for entity, (old, new) in ((donor, shift.donor_budget), (recipient, shift.recipient_budget)):
        change = BudgetChange(level=Level(entity.level), entity=entity.external_id, budget="daily",
                              currency=account.currency, old_minor=old, new_minor=new)  # fmt: skip
        steps.append({
            "entity_id": entity.id, "entity_name": entity.name,
            "change": stored(change), "old": format_minor(old, account.currency),
            "new": format_minor(new, account.currency),
        })  # fmt: skip
    amount = format_minor(shift.amount, account.currency)
    action = {
        "type": ActionType.CHANGE_BUDGET.value,
        "amount_minor": shift.amount,
        "steps": steps,
        "old": f"{steps[0]['old']} / {steps[1]['old']}",
        "new": f"{steps[0]['new']} / {steps[1]['new']}",
        "summary": f"move {amount} a day from {donor.name} to {recipient.name}",
    }
    gain = shift.weekly_profit

    def side(response: budget.Response) -> dict[str, Any]:
        return {
            "days": response.days, "purchases": response.purchases,
            "spend_low": response.spend_low, "spend_high": response.spend_high,
            "spend_now": response.spend_now, "budget_limited": response.budget_limited,
            "average_roas": _interval_json(response.average_roas),
            "marginal_roas": _interval_json(response.marginal_roas),
            "elasticity": _interval_json(response.elasticity),
        }  # fmt: skip

    evidence = {"period": _period(period), "basis": "marginal_roas",
                "donor": side(shift.donor), "recipient": side(shift.recipient),
                "reason": shift.reason, "probability": round(shift.probability, 4)}  # fmt: skip
    d, r = shift.donor.marginal_roas, shift.recipient.marginal_roas
    below = "below break-even" if shift.reason == "below_break_even" else "well below the other's"
    why = (
        f"Over the last {period.days} days, each extra unit spent in {donor.name} returned "
        f"about {d.estimate:.2f} in revenue (90 % interval {d.low:.2f}–{d.high:.2f}: {below}), "
        f"and in {recipient.name} about {r.estimate:.2f} ({r.low:.2f}–{r.high:.2f}), which "
        f"spends its whole budget. Moving {amount} a day from the first to the second "
        f"(each change within 30 %, so neither restarts Meta's learning phase; the "
        f"account's total budget stays the same) would gain about "
        f"{_money(account, gain.estimate)} a week (90 % interval {_money(account, gain.low)} "
        f"to {_money(account, gain.high)})."
    )
    return _found(
        account, recipient, "budget", "marginal_roas",
        (donor.external_id, recipient.external_id), "better",
        action=action, why_not=None, gain=gain, cost=0.0, evidence=evidence,
        title=f"Move {amount} a day from {donor.name} to {recipient.name}", why=why,
        confidence=shift.probability,
    )  # fmt: skip


def _learning_days(
    account: AdAccount, entity_ids: list[int], engine: Engine | None
) -> dict[int, set[date]]:
    """The account-local days each ad set was in Meta's learning phase after a significant
    edit Rex made (a targeting or schedule edit, a budget change of more than 30 %):
    the day of the edit and the `LEARNING_DAYS` after. Edits made elsewhere are not known
    to Rex (the change history is not synced): their days count as settled."""
    with read_session(engine) as session:
        rows = session.execute(
            select(ActionHistory.entity_id, ActionHistory.action_type, ActionHistory.details,
                   ActionHistory.finished_at)
            .where(ActionHistory.account_id == account.id,
                   ActionHistory.entity_id.in_(entity_ids),
                   ActionHistory.status == ActionStatus.SUCCEEDED)
        ).all()  # fmt: skip
    found: dict[int, set[date]] = defaultdict(set)
    for entity_id, _type, details, finished in rows:
        if restarts_learning(details) and finished is not None and entity_id is not None:
            start = local_today(account.timezone_name, finished)
            found[entity_id].update(start + timedelta(days=i)
                                    for i in range(prior.LEARNING_DAYS + 1))  # fmt: skip
    return found


def _interval_json(interval: Interval) -> dict[str, float]:
    return {"estimate": interval.estimate, "low": interval.low, "high": interval.high}


# ---------------------------------------------------------------------- the change


def _edit_for(finding: Finding) -> TargetingEdit | None:
    """The targeting edit that stops delivering to a losing segment, where one field of
    the spec can name it alone."""
    value = finding.key[0]
    if finding.dimension == "age":
        return ExcludeAgeBands(bands=(value,))  # type: ignore[arg-type]  # checked below
    if finding.dimension == "gender" and value in ("male", "female"):
        return ExcludeGender(gender=value)  # type: ignore[arg-type]
    if finding.dimension == "publisher_platform":
        return ExcludePlacement(publisher_platform=value)
    if finding.dimension == "impression_device":
        return ExcludePlacement(impression_device=value)
    if finding.dimension == "country" and len(value) == 2 and value.isalpha():
        return ExcludeCountry(country=value.upper())
    return None


def _no_edit_reason(finding: Finding) -> str | None:
    if finding.direction == "better":
        return "a segment that wins: nothing to exclude (its numbers say what it justifies)"
    return {
        "age_gender": "Meta's targeting cannot leave out one age × gender cell alone",
        "placement": "Meta's targeting cannot leave out one position on one device alone",
        "region": "Rex does not yet look up Meta's region keys: exclude it in Ads Manager",
        "dma": "Rex does not yet look up Meta's DMA keys: exclude it in Ads Manager",
    }.get(finding.dimension)


def _targeting_action(
    adset: AdSetEvidence,
    edit: TargetingEdit,
    delivery: dict[str, EntityInfo | str],
    name: str,
) -> tuple[dict[str, Any] | None, str | None]:
    info = delivery.get(adset.entity.external_id)
    if isinstance(info, str) or info is None:
        return None, info or "its targeting could not be read from Meta"
    if info.targeting is None:
        return None, "Meta did not return its targeting"
    try:
        new, words = edit_spec(
            info.targeting, edit, special_ad_categories=info.special_ad_categories or ()
        )
    except TargetingEditError as error:
        return None, str(error)
    change = TargetingChange(level=Level.ADSET, entity=adset.entity.external_id,
                             old=info.targeting, new=new, summary=words)  # fmt: skip
    action = {
        "type": ActionType.EDIT_TARGETING.value,
        "edit": edit.model_dump(mode="json"),
        "change": stored(change),
        "old": spec_words(info.targeting),
        "new": spec_words(new),
        "summary": f"leave {name} out of the targeting",
    }
    return action, None


def _delivery(account: AdAccount, adsets: Sequence[AdEntity]) -> dict[str, EntityInfo | str]:
    """The ad sets' targeting, schedule and budgets as Meta has them now (one batched
    read; an ad set Meta cannot read maps to the reason)."""
    if not adsets:
        return {}
    client = client_for(account)
    fields = (*_BUDGET_FIELDS, "campaign_id", *ADSET_DELIVERY_FIELDS)
    answers = client.get_objects([a.external_id for a in adsets], fields)
    read: dict[str, EntityInfo | str] = {}
    for adset, answer in zip(adsets, answers, strict=True):
        if isinstance(answer, TokenInvalidError | RateLimitedError):
            raise answer  # the account cannot be read now: no suggestion is changed
        if isinstance(answer, dict):
            read[adset.external_id] = EntityInfo.from_graph(Level.ADSET, answer)
        else:
            read[adset.external_id] = f"Meta could not read its targeting now: {answer}"
    # each ad set with its campaign's special ad categories (they restrict its targeting;
    # a campaign Meta cannot read now leaves them unknown: Meta's refusal would say so)
    infos = [i for i in read.values() if isinstance(i, EntityInfo)]
    campaigns = sorted({i.campaign_id for i in infos if i.campaign_id})
    categories: dict[str, tuple[str, ...]] = {}
    for campaign_id, answer in zip(
        campaigns, client.get_objects(campaigns, ("id", "special_ad_categories")), strict=True
    ):
        if isinstance(answer, TokenInvalidError | RateLimitedError):
            raise answer
        if isinstance(answer, dict):
            categories[campaign_id] = _categories(answer)
    for external_id, info in list(read.items()):
        if isinstance(info, EntityInfo) and info.campaign_id in categories:
            read[external_id] = replace(info, special_ad_categories=categories[info.campaign_id])
    return read


def _categories(answer: dict[str, Any]) -> tuple[str, ...]:
    value = answer.get("special_ad_categories") or []
    return tuple(str(v) for v in value) if isinstance(value, list) else ()


_BUDGET_FIELDS = ("id", "name", "status", "effective_status", "daily_budget",
                  "lifetime_budget", "updated_time")  # fmt: skip


# ------------------------------------------------------------------- the evidence


def _evidence(account: AdAccount, finding: Finding, period: Period) -> dict[str, Any]:
    measure = "cost per purchase" if finding.basis == "purchases" else "cost per click"
    return {
        "period": _period(period),
        "basis": finding.basis,
        "measure": measure,
        "segment": _side(account, finding.segment, finding.segment_rate),
        "rest": _side(account, finding.rest, finding.rest_rate),
        "share_of_spend": round(finding.share, 4),
        "p_value": finding.p_value,
        "probability": round(finding.probability, 4),
        "false_discovery_rate": Q,
    }


def _side(account: AdAccount, sums: SegmentSums, rate: Interval | None) -> dict[str, Any]:
    side: dict[str, Any] = {
        "spend_minor": _minor(account, sums.spend),
        "impressions": sums.impressions,
        "clicks": sums.clicks,
        "purchases": sums.purchases,
        "revenue_minor": None if sums.revenue is None else _minor(account, sums.revenue),
    }
    if rate is not None:  # per unit of spend → cost per purchase (click), its interval
        side["rate_per_unit"] = {"estimate": rate.estimate, "low": rate.low, "high": rate.high}
        side["cost"] = {
            "estimate": _per(1.0, rate.estimate),
            "low": _per(1.0, rate.high),
            "high": _per(1.0, rate.low),
        }
    return side


def _period(period: Period) -> dict[str, Any]:
    return {"since": period.since.isoformat(), "until": period.until.isoformat(),
            "days": period.days}  # fmt: skip


def _pace(adset: AdSetEvidence, period: Period) -> prior.AdSetPace:
    whole = _combined(adset.tables.get("age_gender") or next(iter(adset.tables.values()), []))
    days = max(adset.days, 1)
    return prior.AdSetPace(whole.spend / days, (whole.revenue or 0.0) / days,
                           (whole.purchases or 0) / days)  # fmt: skip


# ------------------------------------------------------------------------- words


def _title(finding: Finding, name: str, adset_name: str) -> str:
    """ "Exclude Audience Network from Catalog: a purchase costs 2.1× the rest's"; "Female
    25–34 in Prospecting: purchases cost 48 % less than in the rest"."""
    ratio = _rate_ratio(finding)  # the segment's purchases (clicks) per spend ÷ the rest's
    cost = 1 / ratio if ratio else 0.0  # what one costs, relative to the rest
    what = "a purchase" if finding.basis == "purchases" else "a click"
    if finding.direction == "worse" and _edit_for(finding) is not None:
        return f"Exclude {name} from {adset_name}: {what} costs {cost:.1f}× the rest's"
    than = f"{abs(cost - 1):.0%} {'more' if cost > 1 else 'less'} than in the rest"
    plural = "purchases" if finding.basis == "purchases" else "clicks"
    shown = f"A{name[1:]}" if name.startswith("ages ") else name  # "iPhone" stays
    return f"{shown} in {adset_name}: {plural} cost {than}"


def _why(
    account: AdAccount,
    finding: Finding,
    name: str,
    adset: AdSetEvidence,
    cost: float,
    why_not: str | None,
) -> str:
    seg, rest = finding.segment, finding.rest
    days = finding.days
    gain = finding.weekly_profit
    if finding.basis == "purchases":
        numbers = (
            f"Over the last {days} days {name} spent {_money(account, seg.spend)} for "
            f"{seg.purchases} purchases ({_money(account, _per(seg.spend, seg.purchases))} "
            f"each); the rest of {adset.entity.name} spent {_money(account, rest.spend)} for "
            f"{rest.purchases} ({_money(account, _per(rest.spend, rest.purchases))} each)."
        )
    else:
        numbers = (
            f"Over the last {days} days a click from {name} cost "
            f"{_money(account, _per(seg.spend, seg.clicks))}, against "
            f"{_money(account, _per(rest.spend, rest.clicks))} for the rest of "
            f"{adset.entity.name} (Meta reports no purchases here: judged on clicks per spend)."
        )
    interval = (
        f"{_money(account, gain.estimate)} a week (90 % interval {_money(account, gain.low)} "
        f"to {_money(account, gain.high)})"
    )
    if finding.direction == "worse":
        effect = (
            f"Moving its {_money(account, seg.spend * 7 / days)} a week to the rest of the "
            f"ad set would gain about {interval}."
        )
    else:
        effect = (
            f"It is {finding.share:.0%} of the ad set's spend; each week of spend moved to it "
            f"from the rest would gain about {interval} — a reason to give it more budget "
            f"(e.g. an ad set of its own)."
        )
    after = _learning_words(account, cost, gain, why_not if finding.direction == "worse" else None)
    return f"{numbers} {effect} {after}".strip()


def _learning_words(account: AdAccount, cost: float, gain: Interval, why_not: str | None) -> str:
    if why_not:
        return f"Not applicable from Rex: {why_not}."
    if not cost:
        return ""
    payback = prior.payback_days(gain, cost=cost)
    back = f"; the gain pays that back in about {payback:.0f} days" if payback else ""
    return (
        f"The edit restarts Meta's learning phase, which costs about {_money(account, cost)} "
        f"of revenue while the ad set learns again{back}."
    )


# ------------------------------------------------------------------------ helpers


def _combined(segments: Sequence[SegmentSums]) -> SegmentSums:
    if not segments:
        return SegmentSums((), 0.0, 0, 0, None, None)
    whole = segments[0]
    for s in segments[1:]:
        whole = whole.plus(s)
    return whole


def _sum_intervals(intervals: Sequence[Interval]) -> Interval:
    """The sum of independent effects: estimates add, half-widths add in quadrature."""
    estimate = sum(i.estimate for i in intervals)
    below = sum((i.estimate - i.low) ** 2 for i in intervals) ** 0.5
    above = sum((i.high - i.estimate) ** 2 for i in intervals) ** 0.5
    return Interval(estimate, estimate - below, estimate + above, intervals[0].level)


def _rate_ratio(finding: Finding) -> float:
    rest = finding.rest_rate.estimate
    return finding.segment_rate.estimate / rest if rest else 0.0


def _ratio(segment: SegmentSums, rest: SegmentSums) -> float:
    """How many times as much a click costs in the segment as in the rest."""
    seg, other = _per(segment.spend, segment.clicks), _per(rest.spend, rest.clicks)
    return seg / other if other else 0.0


def _per(amount: float, count: float | None) -> float:
    return amount / count if count else 0.0


def _minor(account: AdAccount, major: float) -> int:
    return int(round(major * 10 ** decimals(account.currency)))


def _money(account: AdAccount, major: float) -> str:
    return format_money(Decimal(str(round(major, decimals(account.currency)))), account.currency)


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)
