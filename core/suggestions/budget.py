"""Budget shifts: from ad sets whose extra money earns little to ones whose extra money
still earns well and who are held back by their budget.

Per budget holder (one account, one currency): an ACTIVE ad set with a daily budget of
its own, or an ACTIVE campaign with a campaign budget (Advantage+ campaign budget: Meta
shares it among the campaign's ad sets, so it is judged at the campaign, on the
campaign's own daily numbers) — over a period of whole,
settled days, **its response to spend**: a log-linear regression of daily revenue on
daily spend,

    E[revenue on day t] = R₀ · (spend_t / s₀)^β

with s₀ the ad set's current daily spend (its mean over its last `RECENT_DAYS` days used)
— constant elasticity β, the usual power response of marketing mix models: β = 1 is no
diminishing returns, β < 1 concave, as Meta's delivery is (a larger budget reaches
further into the audience at a higher CPM). It is fitted as a quasi-Poisson GLM (log
link, revenue's variance proportional to its mean, the dispersion estimated from the
days), so days without a sale count as they are; the posterior of (log R₀, β) is taken
as its large-sample normal under a flat prior, with Student-t tails on the days' degrees
of freedom. At the current spend, **average ROAS** is R₀ / s₀ and **marginal ROAS** —
the revenue of the next unit of spend — is β · R₀ / s₀, each with a 90 % interval from
`DRAWS` posterior draws with a fixed seed per ad set (the same data give the same answer).

**No verdict without the data** (`Guards`, `NoVerdict`): at least 14 days used, 30
purchases on them, and daily spend that *varied*: the ratio of its 90th to its 10th
percentile at least 1.5. Marginal ROAS is a slope; days that all spend the same (a
budget never changed, or an audience that takes the same whatever the budget) cannot
show it, and then there is no verdict — pacing alone moves a day's spend by about ±8 %
(a ratio of about 1.2), which the guard asks well beyond. Nor is there a verdict while
any of the last `RECENT_DAYS` days was in Meta's learning phase: the current spend is
not settled yet.

**A shift** (`BudgetShift`) pairs a *recipient* — delivery limited by its budget (its
current spend at least `LIMITED` of its budget) and marginal ROAS credibly above
break-even — with a *donor* whose marginal ROAS is credibly below break-even, or at least
`MIN_DIFFERENCE` below the recipient's; "credibly": with posterior probability at least
`CREDIBLE` (95 %), the donor's and the recipient's draws taken together for the
comparison. Recipients with the highest marginal ROAS are served first, by the
donors with the lowest; an ad set is in one shift at most. The amount is the smaller of
`DONOR_SHARE` (20 %) of the donor's budget and `MAX_CHANGE` (30 %) of the recipient's,
rounded down to whole major units: neither change exceeds 30 % — the size above which
the sandbox restarts Meta's learning phase (Meta publishes no threshold, and says any
budget change may) — and the account's total budget is unchanged. The donor keeps at
least the account's minimum daily budget.

**Its weekly profit** (revenue ÷ the break-even ROAS, minus spend; with the default
break-even of 1 that is revenue minus spend), from the two posteriors' draws: the
recipient's spend grows with its budget (it is budget-limited); the donor's falls with
its budget if it is budget-limited, and otherwise only once its new budget is below what
it spends (an ad set past its audience's capacity loses nothing by the cut); each side's
revenue follows its fitted curve. A shift is proposed only if the interval's low end is
above zero.

Assumptions:

* the days used are the response to spend: days in Meta's learning phase (`Day.learning`,
  from the change history: within 7 days of a significant edit) are left out, as are days
  without delivery; the newest days' purchases must be settled (a week old) or their
  revenue is understated;
* nothing else that moves revenue moved with the budget — no trend (creative fatigue,
  season) and no weekday pattern that budget changes line up with; these are not modelled;
* day-to-day spend that is not the budget's doing (pacing, the auction's supply) moves
  revenue in proportion (β ≈ 1 for that part): it pulls β toward 1 and marginal ROAS
  toward the average — a donor then looks better than it is (conservative) and a
  recipient slightly better (its budget-driven variation should dominate);
* the curve holds up to 30 % beyond the recipient's current spend (extrapolated there if
  its history never spent that much).
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Literal

import numpy as np

from core.actions.changes import SIGNIFICANT_BUDGET_CHANGE
from core.suggestions import stats

DRAWS = 4000
RECENT_DAYS = 7  # the current spend: the mean of the last days used
LIMITED = 0.85  # spending at least this share of its budget: delivery limited by budget
DONOR_SHARE = 0.2  # move at most this share of the donor's budget …
MAX_CHANGE = SIGNIFICANT_BUDGET_CHANGE  # … and change neither budget by more (learning)
MIN_DIFFERENCE = 0.2  # a donor's marginal ROAS credibly at least 20 % below the recipient's
CREDIBLE = 0.95  # "credibly": with at least this posterior probability
Reason = Literal["below_break_even", "below_recipient"]


@dataclass(frozen=True)
class Day:
    """One whole day of an ad set. Money in the account currency's major units."""

    date: date
    spend: float
    revenue: float
    purchases: int
    learning: bool = False  # in Meta's learning phase (from the change history): left out


@dataclass(frozen=True)
class BudgetSeries:
    """A budget holder — an ACTIVE ad set with its own daily budget, or an ACTIVE
    campaign with a campaign budget: its days and its budget now."""

    holder: str  # the ad set's or campaign's Meta id
    daily_budget: int  # minor units, now
    days: tuple[Day, ...]

    def __post_init__(self) -> None:
        if self.daily_budget <= 0:
            raise ValueError(f"daily_budget must be above 0, not {self.daily_budget}")


@dataclass(frozen=True)
class Guards:
    """The least data a response needs."""

    min_days: int = 14
    min_purchases: int = 30
    min_spread: float = 1.5  # the days' spend: 90th percentile ÷ 10th percentile


@dataclass(frozen=True)
class NoVerdict:
    """An ad set that was not judged, and why."""

    holder: str
    reason: str


@dataclass(frozen=True)
class Response:
    """An ad set's estimated response to spend, at its current spend."""

    holder: str
    daily_budget: int  # minor units
    days: int  # days used
    purchases: int  # on them
    spend_low: float  # the range of daily spend on the days used (major units)
    spend_high: float
    spend_now: float  # the current daily spend s₀ (mean of the last RECENT_DAYS used)
    budget_limited: bool  # spend_now at least LIMITED of the budget
    elasticity: stats.Interval  # β
    average_roas: stats.Interval  # at spend_now
    marginal_roas: stats.Interval  # at spend_now
    fit: tuple[float, float]  # (log R₀, β)
    covariance: tuple[float, float, float]  # var log R₀, their covariance, var β
    dof: int  # degrees of freedom of the posterior's t tails

    def draws(self) -> tuple[np.ndarray, np.ndarray]:
        """`DRAWS` posterior draws of (R₀, β), the same every time for the same fit."""
        return _draws(self.holder, self.fit, self.covariance, self.dof)


@dataclass(frozen=True)
class BudgetShift:
    """Move `amount` of daily budget from the donor to the recipient."""

    donor: Response
    recipient: Response
    reason: Reason  # the donor's marginal ROAS: below break-even, or well below the recipient's
    amount: int  # minor units a day
    donor_budget: tuple[int, int]  # old, new (minor units)
    recipient_budget: tuple[int, int]
    weekly_profit: stats.Interval  # major units
    probability: float  # posterior probability that the shift gains


def respond(
    series: BudgetSeries, *, unit: int, guards: Guards | None = None
) -> Response | NoVerdict:
    """The ad set's response to spend, or why there is none (see the module's guards).
    `unit`: minor units per major unit of the account's currency."""
    if unit <= 0:
        raise ValueError(f"unit must be above 0, not {unit}")
    guards = guards or Guards()
    ordered = sorted(series.days, key=lambda d: d.date)
    if any(d.learning for d in ordered[-RECENT_DAYS:]):
        return NoVerdict(series.holder, "in Meta's learning phase in its last "
                         f"{RECENT_DAYS} days: its current spend is not settled")  # fmt: skip
    used = [d for d in ordered if not d.learning and d.spend > 0]
    if len(used) < guards.min_days:
        return NoVerdict(series.holder, f"{len(used)} days with delivery outside learning, "
                         f"fewer than {guards.min_days}")  # fmt: skip
    purchases = sum(d.purchases for d in used)
    if purchases < guards.min_purchases:
        return NoVerdict(series.holder,
                         f"{purchases} purchases, fewer than {guards.min_purchases}")  # fmt: skip
    spend = np.array([d.spend for d in used])
    revenue = np.array([d.revenue for d in used])
    p10, p90 = np.quantile(spend, [0.1, 0.9])
    if p90 < guards.min_spread * p10:
        return NoVerdict(series.holder, f"daily spend hardly varied ({p90 / p10:.2f}× from "
                         "its 10th to its 90th percentile): marginal ROAS cannot be "
                         "estimated")  # fmt: skip
    spend_now = float(np.mean(spend[-RECENT_DAYS:]))
    fitted = _quasi_poisson(np.log(spend / spend_now), revenue)
    if fitted is None:
        return NoVerdict(series.holder, "the regression of revenue on spend did not converge")
    fit, cov, dof = fitted
    r0, beta = _draws(series.holder, fit, cov, dof)
    return Response(
        holder=series.holder,
        daily_budget=series.daily_budget,
        days=len(used),
        purchases=purchases,
        spend_low=float(spend.min()),
        spend_high=float(spend.max()),
        spend_now=spend_now,
        budget_limited=spend_now * unit >= LIMITED * series.daily_budget,
        elasticity=_interval(beta),
        average_roas=_interval(r0 / spend_now),
        marginal_roas=_interval(beta * r0 / spend_now),
        fit=fit,
        covariance=cov,
        dof=dof,
    )


def find_shifts(
    series: Sequence[BudgetSeries],
    *,
    unit: int,
    break_even_roas: float = 1.0,
    min_budget: int = 0,
    guards: Guards | None = None,
) -> list[BudgetShift]:
    """The budget shifts the account's ad sets support (see the module's docstring).
    `unit`: minor units per major unit; `break_even_roas`: the ROAS at which a sale pays
    for its ad (1 ÷ the margin; 1: revenue counts as profit); `min_budget`: the account's
    minimum daily budget, minor units."""
    if break_even_roas <= 0:
        raise ValueError(f"break_even_roas must be above 0, not {break_even_roas}")
    judged = [respond(s, unit=unit, guards=guards) for s in series]
    responses = [r for r in judged if isinstance(r, Response)]

    def credible_recipient(r: Response) -> bool:
        return r.budget_limited and bool(np.mean(_marginal(r) > break_even_roas) >= CREDIBLE)

    recipients = sorted(
        filter(credible_recipient, responses),
        key=lambda r: (-r.marginal_roas.estimate, r.holder),
    )
    donors = sorted(responses, key=lambda r: (r.marginal_roas.estimate, r.holder))
    taken: set[str] = {r.holder for r in recipients}  # a recipient is never a donor
    shifts = []
    for recipient in recipients:
        for donor in donors:
            if donor.holder in taken:
                continue
            reason = _reason(donor, recipient, break_even_roas)
            if reason is None:
                continue
            shift = _shift(donor, recipient, reason, unit=unit, break_even=break_even_roas,
                           min_budget=min_budget)  # fmt: skip
            if shift is not None:
                shifts.append(shift)
                taken.add(donor.holder)
                break
    return shifts


def _reason(donor: Response, recipient: Response, break_even: float) -> Reason | None:
    """Why the donor should give to the recipient, if it credibly should: the posterior
    probability of its marginal ROAS being below break-even, or at least `MIN_DIFFERENCE`
    below the recipient's (from both posteriors' draws), at least `CREDIBLE`."""
    donor_marginal = _marginal(donor)
    if np.mean(donor_marginal < break_even) >= CREDIBLE:
        return "below_break_even"
    if np.mean(donor_marginal <= (1 - MIN_DIFFERENCE) * _marginal(recipient)) >= CREDIBLE:
        return "below_recipient"
    return None


def _marginal(response: Response) -> np.ndarray:
    """Draws of the marginal ROAS at the current spend: β · R₀ / s₀."""
    r0, beta = response.draws()
    return beta * r0 / response.spend_now


def _shift(
    donor: Response,
    recipient: Response,
    reason: Reason,
    *,
    unit: int,
    break_even: float,
    min_budget: int,
) -> BudgetShift | None:
    """The shift between the two, if its amount is at least one major unit and its weekly
    profit is credibly positive."""
    raw = min(DONOR_SHARE * donor.daily_budget, MAX_CHANGE * recipient.daily_budget,
              donor.daily_budget - min_budget)  # fmt: skip
    amount = int(raw // unit) * unit  # whole major units, rounded down: both stay within bounds
    if amount < unit:
        return None
    donor_new = donor.daily_budget - amount
    recipient_new = recipient.daily_budget + amount
    # spend after the change (major units a day)
    recipient_spend = recipient.spend_now * recipient_new / recipient.daily_budget
    if donor.budget_limited:
        donor_spend = donor.spend_now * donor_new / donor.daily_budget
    else:  # its audience or its bid limits it: it spends as before while the budget allows
        donor_spend = min(donor.spend_now, donor_new / unit)
    gain = np.zeros(DRAWS)
    for side, after in ((recipient, recipient_spend), (donor, donor_spend)):
        r0, beta = side.draws()
        extra_revenue = r0 * ((after / side.spend_now) ** beta - 1)
        gain += extra_revenue / break_even - (after - side.spend_now)
    weekly = _interval(7 * gain)
    if weekly.low <= 0:
        return None
    return BudgetShift(
        donor=donor,
        recipient=recipient,
        reason=reason,
        amount=amount,
        donor_budget=(donor.daily_budget, donor_new),
        recipient_budget=(recipient.daily_budget, recipient_new),
        weekly_profit=weekly,
        probability=float(np.mean(gain > 0)),
    )


def _quasi_poisson(
    x: np.ndarray, y: np.ndarray, *, iterations: int = 50
) -> tuple[tuple[float, float], tuple[float, float, float], int] | None:
    """log E[y] = a + b·x by iteratively reweighted least squares (variance ∝ mean): the
    estimates, their covariance (× the dispersion from the Pearson residuals) and the
    degrees of freedom; None if it does not converge."""
    design = np.column_stack([np.ones_like(x), x])
    theta = np.array([math.log(max(float(np.mean(y)), 1e-12)), 1.0])
    for _ in range(iterations):
        mu = np.exp(design @ theta)
        z = design @ theta + (y - mu) / mu
        information = design.T @ (design * mu[:, None])
        new = np.linalg.solve(information, design.T @ (mu * z))
        if not np.all(np.isfinite(new)):
            return None
        done = np.max(np.abs(new - theta)) < 1e-10
        theta = new
        if done:
            break
    else:
        return None
    mu = np.exp(design @ theta)
    dof = len(y) - 2
    dispersion = float(np.sum((y - mu) ** 2 / mu)) / dof
    cov = dispersion * np.linalg.inv(design.T @ (design * mu[:, None]))
    return (
        (float(theta[0]), float(theta[1])),
        (float(cov[0, 0]), float(cov[0, 1]), float(cov[1, 1])),
        dof,
    )


def _draws(
    holder: str, fit: tuple[float, float], cov: tuple[float, float, float], dof: int
) -> tuple[np.ndarray, np.ndarray]:
    """Draws of (R₀, β) from a bivariate t posterior, seeded by the ad set's id."""
    rng = np.random.default_rng(zlib.crc32(holder.encode()))
    va, cab, vb = cov
    chol = np.linalg.cholesky(np.array([[va, cab], [cab, vb]]) + 1e-18 * np.eye(2))
    z = rng.standard_normal((DRAWS, 2)) @ chol.T
    z *= np.sqrt(dof / rng.chisquare(dof, DRAWS))[:, None]
    return np.exp(fit[0] + z[:, 0]), fit[1] + z[:, 1]


def _interval(draws: np.ndarray, level: float = stats.LEVEL) -> stats.Interval:
    tail = (1 - level) / 2
    low, high = np.quantile(draws, [tail, 1 - tail])
    return stats.Interval(float(np.mean(draws)), float(low), float(high), level)
