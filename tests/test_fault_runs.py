"""Fault runs (tests/fault_run.py): the engine against a sandbox that fails and lies,
runners SIGKILLed mid-run, recovery after each — the record must match what Meta
applied, and what Meta applied must stay inside every rule's cooldown and daily cap.
Both databases."""

from __future__ import annotations

from sqlalchemy import Engine

from tests.fault_run import run_faults


def test_after_faults_and_kills_the_record_matches_what_meta_applied(db: Engine) -> None:
    report = run_faults(db, slots=10, seed=3)
    figures = report.as_dict()

    assert report.writes_applied >= 20, figures  # the run did real work …
    assert report.kills >= 2 and sum(report.faults.values()) >= 15, figures  # … under fire
    assert report.by_status["succeeded"] >= 20, figures
    assert report.settled_by["change history"] >= 1, figures  # lost answers were settled
    assert report.mismatches == [], figures
    assert report.unsettled == [], figures
    assert report.cap_violations == [], figures
    assert report.needs_person == 0, figures
