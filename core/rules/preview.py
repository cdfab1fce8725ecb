"""What rules match now, on synced data, without planning or changing anything.

`preview_rule` evaluates one rule (saved, by id, or a document not saved yet);
`preview_rules` every active rule in one pass (the pass a tick of the engine runs).
What a rule would then *do* — the planner's guards and changes — is
`core.engine.preview.preview_outcomes`.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Engine

from core.access.actor import Actor
from core.db import read_session
from core.db.models import RuleStatus
from core.db.types import utcnow
from core.rules.document import RuleDocument
from core.rules.evaluate import Evaluation, evaluate, evaluate_many
from core.rules.store import RuleView, get_rule, list_rules


def preview_rule(
    rule: int | RuleDocument,
    now: datetime | None = None,
    *,
    actor: Actor,
    engine: Engine | None = None,
) -> Evaluation:
    """What a rule (saved, by id, or an unsaved document) matches now; changes nothing."""
    document = get_rule(rule, actor=actor, engine=engine).rule if isinstance(rule, int) else rule
    with read_session(engine) as session:
        return evaluate(session, document, now or utcnow())


def preview_rules(
    now: datetime | None = None, *, actor: Actor, engine: Engine | None = None
) -> list[tuple[RuleView, Evaluation]]:
    """What every active rule `actor` may read matches now, all evaluated in one pass;
    changes nothing. Returns (rule view, evaluation) pairs in rule id order."""
    views = [v for v in list_rules(actor=actor, engine=engine) if v.status == RuleStatus.ACTIVE]
    with read_session(engine) as session:
        evaluations = evaluate_many(session, [v.rule for v in views], now or utcnow())
    return list(zip(views, evaluations, strict=True))
