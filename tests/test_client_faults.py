"""The Graph client against a hostile server: answers that trickle, pages that never end,
batch answers that do not match, connections refused — each ends with a typed error
that says whether a write may have happened, never with a read that runs forever."""

from __future__ import annotations

import socket
import time
from dataclasses import replace

import pytest
from sqlalchemy import Engine, select

from core.access.actor import SYSTEM
from core.accounts import connect_account
from core.db import read_session
from core.db.models import SyncRun
from core.meta import BatchRequest, ConnectionFailedError, GraphClient, GraphOptions
from core.meta.errors import ReadLimitError, UnexpectedResponseError
from core.sync.runner import SyncOptions, sync_accounts
from tests.conftest import NOW
from tests.hostile import (
    Behaviour,
    Hostile,
    edge,
    endless_pages,
    node_read,
    rewrite,
    trickle,
    writes,
)

USD = "act_1010000001"


def client_for_url(sandbox, url: str, **options) -> GraphClient:  # type: ignore[no-untyped-def]
    """A client of `url`; `options` change fields of the settings' GraphOptions."""
    options.setdefault("poll_seconds", 0.001)
    graph_options = replace(GraphOptions.from_settings(), **options)
    return GraphClient(sandbox.token, account_id=USD, base_url=url, options=graph_options)


def test_a_trickling_answer_is_cut_off_at_the_call_deadline(sandbox) -> None:  # type: ignore[no-untyped-def]
    with Hostile(sandbox.url) as hostile:
        hostile.add(Behaviour(node_read, trickle(0.2)))  # a byte every 0.2 s: ~60 s in all
        graph = client_for_url(sandbox, hostile.url, timeout_seconds=1.0, max_retries=0)
        started = time.monotonic()
        with pytest.raises(ConnectionFailedError, match="no complete answer") as caught:
            graph.get_account(USD)
        elapsed = time.monotonic() - started
    assert elapsed < 5  # the deadline held although every byte came within the timeout
    assert caught.value.sent and caught.value.outcome_unknown  # it went out: a write may have


def test_endless_pages_stop_at_the_page_cap(sandbox) -> None:  # type: ignore[no-untyped-def]
    with Hostile(sandbox.url) as hostile:
        hostile.add(Behaviour(edge("ads"), endless_pages))
        graph = client_for_url(sandbox, hostile.url, max_pages=25)
        with pytest.raises(ReadLimitError, match="25 pages"):
            list(graph.iter_edge(f"{USD}/ads", {"fields": "id"}))
        asked = sum(1 for method, path, _ in hostile.log if path.endswith("/ads"))
    assert asked == 25


def test_a_read_that_takes_too_long_in_all_stops_at_the_read_deadline(sandbox) -> None:  # type: ignore[no-untyped-def]
    def slow_pages(request, forward):  # type: ignore[no-untyped-def]
        time.sleep(0.3)  # each page in time, but they never end
        return endless_pages(request, forward)

    with Hostile(sandbox.url) as hostile:
        hostile.add(Behaviour(edge("ads"), slow_pages))
        graph = client_for_url(sandbox, hostile.url, read_deadline_seconds=1.0)
        with pytest.raises(ReadLimitError, match="REX_GRAPH_READ_DEADLINE_SECONDS"):
            list(graph.iter_edge(f"{USD}/ads", {"fields": "id"}))


def test_a_sync_against_endless_pages_records_why_it_stopped(
    db: Engine, sandbox, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("REX_GRAPH_MAX_PAGES", "30")
    from core.settings import reload_settings

    reload_settings()
    with Hostile(sandbox.url) as hostile:
        connect_account(USD, sandbox.token, graph_url=hostile.url, by=SYSTEM)
        hostile.add(Behaviour(edge("adsets"), endless_pages))
        options = SyncOptions(days=3, breakdowns=False, now=NOW, client_options={"max_pages": 30})
        (result,) = sync_accounts(options=options)
    assert not result.ok and "stopped after 30 pages" in result.error
    with read_session() as session:
        run = session.scalars(select(SyncRun)).one()
    assert run.status == "failed" and "REX_GRAPH_MAX_PAGES" in run.error


def test_a_batch_answer_that_does_not_match_makes_every_write_unknown(sandbox) -> None:  # type: ignore[no-untyped-def]
    ads = [e.id for e in sandbox.state.entities.values() if e.level == "ad"][:3]
    with Hostile(sandbox.url) as hostile:
        hostile.add(Behaviour(writes, rewrite(lambda items: items[:1])))
        graph = client_for_url(sandbox, hostile.url)
        results = graph.batch([BatchRequest("POST", ad, {"status": "PAUSED"}) for ad in ads])
    assert len(results) == 3
    assert all(isinstance(r, UnexpectedResponseError) and r.outcome_unknown for r in results)
    assert len(sandbox.state.write_log) == 3  # all applied; the client sent them once


def test_writes_are_not_retried_on_transient_errors_but_reads_are(sandbox) -> None:  # type: ignore[no-untyped-def]
    from core.sandbox import FaultConfig

    ads = [e.id for e in sandbox.state.entities.values() if e.level == "ad"][:2]
    graph = client_for_url(sandbox, sandbox.url)
    # the batch request passes, its first item (a write) fails transiently
    sandbox.set_faults(FaultConfig(fail_next=["none", "transient"]))
    results = graph.batch(
        [BatchRequest("POST", ads[0], {"status": "PAUSED"}), BatchRequest("GET", ads[1])]
    )
    assert results[0].outcome_unknown  # not sent again: it may have been applied
    assert isinstance(results[1], dict)
    sandbox.set_faults(FaultConfig(fail_next=["none", "transient"]))
    (read,) = graph.batch([BatchRequest("GET", ads[1], {"fields": "id"})])
    assert read == {"id": ads[1]}  # a read is retried


def test_a_refused_connection_is_known_not_to_have_been_sent(sandbox) -> None:  # type: ignore[no-untyped-def]
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    graph = client_for_url(sandbox, f"http://127.0.0.1:{port}", max_retries=0)
    with pytest.raises(ConnectionFailedError) as caught:
        graph.post(ads_id(sandbox), {"status": "PAUSED"}, idempotent=False)
    assert not caught.value.sent and not caught.value.outcome_unknown


def ads_id(sandbox) -> str:  # type: ignore[no-untyped-def]
    return next(e.id for e in sandbox.state.entities.values() if e.level == "ad")
