"""The Graph API client: the only code in Rex that speaks HTTP to Meta.

What it guarantees:
* a total deadline on every call (a trickling answer is cut off), and on every read of
  many pages a page cap and a deadline for the whole read (`ReadLimitError`);
* the token travels in the `Authorization` header, never in a URL, so it cannot leak
  into logs, proxies or exception texts;
  `appsecret_proof` on every call when an app secret is configured;
* one error mapping (`core.meta.errors.error_from_response`);
* bounded retries with exponential backoff and full jitter, on transient errors and
  rate limits only, and only of reads: a write is never sent twice, because a first
  attempt answered with an error may have taken effect (the caller settles its outcome
  by reading Meta) — the policy is `core.meta.retry`, the limits `GraphOptions`;
* a batch returns one result per request, whatever happens to some of its chunks:
  results already received are kept; an error says whether the request was sent at
  all (`GraphError.sent`) and whether a write may have been applied
  (`GraphError.outcome_unknown`);
* after a rate limit, no call to that account before the regain time (a short wait is
  waited out, a long one raises `RateLimitedError` at once without calling Meta);
* slowing down when Meta's usage headers pass 75 %;
* cursor paging, batches of at most 50 with `null` items retried, async insights
  report runs polled until `Job Completed`;
* one client may be shared by threads (a sync runs an account's async reports at once):
  each thread has its own HTTP session, and the rate-limit block is one record for all
  of them — a block one thread meets stops the others' calls too.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any
from urllib.parse import urlencode

import requests

from core.enums import Level
from core.errors import InputError
from core.logs import register_secret
from core.meta.activities import ACTIVITY_FIELDS, Activity
from core.meta.errors import (
    AsyncReportError,
    ConnectionFailedError,
    GraphError,
    InvalidParameterError,
    RateLimitedError,
    ReadLimitError,
    TransientError,
    UnexpectedResponseError,
    error_from_response,
    usage_percent,
)
from core.meta.objects import (
    ACCOUNT_FIELDS,
    EDGE_FOR_LEVEL,
    ENTITY_FIELDS,
    LISTED_STATUSES,
    AccountInfo,
    CopyResult,
    EntityInfo,
    InsightRow,
    InvalidAnswerError,
)
from core.meta.options import GraphOptions
from core.meta.retry import backoff, block_wait, retry_delay
from core.meta.transport import DeadlineExceeded, DeadlineSession, never_sent

log = logging.getLogger(__name__)

BATCH_LIMIT = 50
PAGE_LIMIT = 500
SLOWDOWN_PERCENT = 75
ALL_STATUSES = LISTED_STATUSES
ASYNC_DONE = "Job Completed"
ASYNC_FAILED = ("Job Failed", "Job Skipped")


@dataclass(frozen=True)
class BatchRequest:
    """One item of a batch. `params` are encoded the way Meta's SDKs encode them.
    Reads (GET) that fail transiently are sent again; writes never are."""

    method: str
    path: str
    params: Mapping[str, Any] = field(default_factory=dict)

    @property
    def is_read(self) -> bool:
        return self.method.upper() == "GET"


BatchResult = dict[str, Any] | GraphError
InvalidHandler = Callable[[InvalidAnswerError], None]


class GraphClient:
    """Calls to the Graph API with one token, for one ad account (or the app).

    `options` say where and how (defaults: `GraphOptions.from_settings()`); `base_url` is
    the account's own Graph URL when it has one (a sandbox); `blocked_until` a rate
    limit on record for the account; `sleep` how to wait (a test passes its own).

    Safe to share between threads: `requests.Session` is not documented as thread-safe,
    so each thread calls through a session of its own; the block on record and the call
    count change under a lock."""

    def __init__(
        self,
        token: str,
        *,
        account_id: str | None = None,
        base_url: str | None = None,
        options: GraphOptions | None = None,
        blocked_until: datetime | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        check_token(token)
        options = options or GraphOptions.from_settings()
        self.options = options
        self._token = token
        register_secret(token)
        self.account_id = account_id
        self.base_url = (base_url or options.base_url).rstrip("/")
        self.version = options.version
        secret = options.app_secret.get_secret_value() if options.app_secret else ""
        self._proof = (
            hmac.new(secret.encode(), token.encode(), hashlib.sha256).hexdigest()
            if secret
            else None
        )
        self.blocked_until = blocked_until
        self.last_usage_percent = 0
        self.calls = 0
        self._app_id: str | None = None
        self._lock = threading.Lock()  # blocked_until and calls, shared by threads
        self._sessions = threading.local()
        self._sleep = sleep

    def __repr__(self) -> str:  # never the token
        return f"GraphClient({self.base_url}/{self.version}, account={self.account_id})"

    @property
    def _http(self) -> DeadlineSession:
        """This thread's HTTP session (made on its first call)."""
        session = getattr(self._sessions, "session", None)
        if session is None:
            session = self._sessions.session = DeadlineSession()
        return session

    # ------------------------------------------------------------------ transport

    def get(self, path: str, params: Mapping[str, Any] | None = None) -> dict[str, Any]:
        return self.request("GET", path, params)

    def post(
        self, path: str, params: Mapping[str, Any] | None = None, *, idempotent: bool = True
    ) -> dict[str, Any]:
        return self.request("POST", path, params, idempotent=idempotent)

    def request(
        self,
        method: str,
        path: str,
        params: Mapping[str, Any] | None = None,
        *,
        idempotent: bool = True,
    ) -> Any:
        """One Graph call. Returns the decoded JSON body.

        A rate limit that regains soon is waited out and the call made again (Meta did not
        run a call it refused for its rate). A transient failure is retried only when the
        call is `idempotent` — a read; a write answered with one may have been applied.
        The policy is `core.meta.retry.retry_delay`; a block on record is waited out (or
        the call refused unsent) at the top of each attempt.
        """
        encoded = encode_params(params or {})
        if self._proof:
            encoded["appsecret_proof"] = self._proof
        url = f"{self.base_url}/{self.version}/{path.lstrip('/')}"
        attempt = 0
        while True:
            self._wait_out_block(attempt)
            try:
                return self._send(method, url, path, encoded)
            except GraphError as error:
                self._note_block(error)
                delay = retry_delay(
                    error, attempt, idempotent=idempotent, limits=self.options.retry
                )
                if delay is None:
                    raise
                # A rate limit's wait is the block just noted, waited out at the top.
                if not isinstance(error, RateLimitedError):
                    self._sleep(delay)
            attempt += 1

    def _send(self, method: str, url: str, path: str, params: dict[str, str]) -> Any:
        headers = {"Authorization": f"Bearer {self._token}", "Accept": "application/json"}
        started = time.monotonic()
        with self._lock:
            self.calls += 1
        try:
            response = self._http.request(
                method,
                url,
                params=params if method == "GET" else None,
                data=params if method != "GET" else None,
                headers=headers,
                timeout=self.options.timeout_seconds,
                deadline=self.options.timeout_seconds,
            )
        except (requests.Timeout, DeadlineExceeded) as error:
            failure = ConnectionFailedError(
                f"no complete answer from {self.base_url} within "
                f"{self.options.timeout_seconds:g} s "
                f"({method} /{path})"
            )
            raise (failure.not_sent() if never_sent(error) else failure) from None
        except requests.RequestException as error:
            failure = ConnectionFailedError(
                f"cannot reach {self.base_url} ({method} /{path}): {type(error).__name__}"
            )
            raise (failure.not_sent() if never_sent(error) else failure) from None
        elapsed_ms = (time.monotonic() - started) * 1000
        log.debug("graph %s /%s → %s in %.0f ms", method, path, response.status_code, elapsed_ms)
        try:
            body = response.json()
        except ValueError:
            body = None
        if response.status_code >= 400 or (isinstance(body, dict) and "error" in body):
            raise error_from_response(
                response.status_code, body, response.headers, account_id=self.account_id
            )
        if body is None:
            raise UnexpectedResponseError(
                f"{method} /{path} answered HTTP {response.status_code} without JSON",
                http_status=response.status_code,
            )
        self._note_usage(response.headers)
        return body

    def _wait_out_block(self, attempt: int) -> None:
        """No call before the regain time: wait a short block out, refuse a long one.
        The block is cleared only if no thread noted a new one meanwhile."""
        with self._lock:
            blocked = self.blocked_until
        if blocked is None:
            return  # no block on record
        wait = block_wait(blocked, attempt, limits=self.options.retry)
        if wait is None:
            raise RateLimitedError(
                f"calls to {self.account_id or 'this app'} are paused by an earlier rate limit",
                regain_at=blocked,
            ).not_sent()
        if wait > 0:
            self._sleep(wait)
        with self._lock:
            if self.blocked_until == blocked:
                self.blocked_until = None

    def _note_block(self, error: GraphError) -> None:
        """Record a rate limit on the app or account: no call before its regain time."""
        if isinstance(error, RateLimitedError) and not error.object_level:
            with self._lock:
                self.blocked_until = max(self.blocked_until or error.regain_at, error.regain_at)

    def _note_usage(self, headers: Mapping[str, str]) -> None:
        percent = usage_percent(headers)
        self.last_usage_percent = percent
        if percent > SLOWDOWN_PERCENT:
            # Slow down in proportion as the limit nears: up to 4 × the backoff base.
            self._sleep(self.options.backoff_seconds * 4 * (percent - SLOWDOWN_PERCENT) / 25)

    # --------------------------------------------------------------------- paging

    def iter_edge(
        self,
        path: str,
        params: Mapping[str, Any] | None = None,
        *,
        deadline: float | None = None,
    ) -> Iterator[Any]:
        """Every item of an edge, page after page (`after` cursors; empty pages allowed).

        At most `options.max_pages` pages, all read before `deadline` (a `time.monotonic()`
        instant; default: the read deadline from now): a Graph that keeps sending pages
        or answers ever more slowly ends in ReadLimitError, not in a read that never ends.
        """
        query = dict(params or {})
        query.setdefault("limit", PAGE_LIMIT)
        seen_cursors: set[str] = set()
        started = time.monotonic()
        if deadline is None:
            deadline = started + self.options.read_deadline_seconds
        pages = 0
        while True:
            if pages >= self.options.max_pages:
                raise ReadLimitError(
                    f"GET /{path} stopped after {pages:,} pages (REX_GRAPH_MAX_PAGES): the "
                    "answer kept announcing another page"
                )
            if time.monotonic() > deadline:
                raise ReadLimitError(
                    f"GET /{path} stopped after {time.monotonic() - started:.0f} s and "
                    f"{pages:,} pages (REX_GRAPH_READ_DEADLINE_SECONDS)"
                )
            page = self.get(path, query)
            pages += 1
            if not isinstance(page, dict) or not isinstance(page.get("data"), list):
                raise UnexpectedResponseError(f"GET /{path} did not answer a list page")
            yield from page["data"]
            paging = page.get("paging") or {}
            after = (paging.get("cursors") or {}).get("after")
            if not paging.get("next") or not after:
                return
            if after in seen_cursors:
                raise UnexpectedResponseError(f"GET /{path} repeated a paging cursor")
            seen_cursors.add(after)
            query["after"] = after

    # ---------------------------------------------------------------------- batch

    def batch(self, requests_: Sequence[BatchRequest]) -> list[BatchResult]:
        """Run requests in batches of ≤ 50; one result (body or GraphError) per request,
        in order, whatever happens — this never raises.

        A chunk whose call fails, or whose answer is not a list of the chunk's length,
        gives each of its requests that error (with `sent` saying whether the call went
        out); the other chunks' results are kept. Reads that Meta answers with `null`
        (it ran out of time) or a transient error are sent again, with backoff, up to
        the retry limit. Writes are never sent again: for them such an answer means the
        outcome is unknown (`outcome_unknown`), to be settled by reading Meta.
        """
        results: list[BatchResult | None] = [None] * len(requests_)
        pending = list(range(len(requests_)))
        attempt = 0
        while pending:
            retry: list[int] = []
            for start in range(0, len(pending), BATCH_LIMIT):
                chunk = pending[start : start + BATCH_LIMIT]
                reads_only = all(requests_[i].is_read for i in chunk)
                items = [_batch_item(requests_[i]) for i in chunk]
                try:
                    answers = self.post("", {"batch": items}, idempotent=reads_only)
                except GraphError as error:
                    for index in chunk:
                        results[index] = error
                    continue
                if not isinstance(answers, list) or len(answers) != len(chunk):
                    got = f"{len(answers)} answers" if isinstance(answers, list) else "no list"
                    problem = UnexpectedResponseError(
                        f"the batch answer does not match the request ({len(chunk)} asked, {got})"
                    )
                    for index in chunk:
                        results[index] = problem
                    continue
                for index, answer in zip(chunk, answers, strict=True):
                    result = self._batch_result(requests_[index], answer)
                    if self._send_item_again(requests_[index], result, attempt):
                        retry.append(index)
                    results[index] = result
            pending = retry
            if pending:
                self._sleep(backoff(attempt, self.options.retry))
                attempt += 1
        return [result for result in results if result is not None]

    def _send_item_again(self, request: BatchRequest, result: BatchResult, attempt: int) -> bool:
        """A batch item failed transiently: send it again if the policy says so (reads
        only). A rate-limited item is not: its block is on record (`_batch_result`), and
        the client's next call waits for it or is refused."""
        if not isinstance(result, TransientError):
            return False
        delay = retry_delay(result, attempt, idempotent=request.is_read, limits=self.options.retry)
        return delay is not None

    def _batch_result(self, request: BatchRequest, answer: Any) -> BatchResult:
        if answer is None:
            return ConnectionFailedError(
                f"Meta gave no answer for {request.method} /{request.path} in a batch "
                "(its outcome is unknown)"
            )
        if not isinstance(answer, dict):
            return UnexpectedResponseError(
                f"batch item {request.method} /{request.path} answered {type(answer).__name__}"
            )
        try:
            code = int(answer.get("code") or 0)
        except (TypeError, ValueError):
            code = 0
        listed = answer.get("headers")
        header_list = listed if isinstance(listed, list) else []
        headers = {
            str(h.get("name", "")): str(h.get("value", ""))
            for h in header_list
            if isinstance(h, dict)
        }
        try:
            body = json.loads(answer.get("body") or "null")
        except (TypeError, ValueError):
            body = None
        if code >= 400 or (isinstance(body, dict) and "error" in body):
            error = error_from_response(code, body, headers, account_id=self.account_id)
            self._note_block(error)
            return error
        if not isinstance(body, dict):
            return UnexpectedResponseError(f"batch item {request.path} answered no object")
        return body

    # --------------------------------------------------------- change history

    def app_id(self) -> str | None:
        """The id of the app the token belongs to (None if Meta will not say): Rex's own
        changes carry it in the change history."""
        if self._app_id is None:
            self._app_id = ""  # asked once per client, whatever the answer
            try:
                body = self.get("app", {"fields": "id,name"})
            except GraphError as error:
                log.info("the token's app id cannot be read: %s", error)
                return None
            if isinstance(body, dict) and body.get("id"):
                self._app_id = str(body["id"])
        return self._app_id or None

    def activities(
        self, account_id: str, since: datetime, until: datetime | None = None
    ) -> list[Activity]:
        """The account's change history between two instants (Meta keeps about 90 days).
        Entries that cannot be read are left out and logged."""
        params: dict[str, Any] = {
            "fields": ",".join(ACTIVITY_FIELDS),
            "since": int(since.timestamp()),
            "limit": 100,
        }
        if until is not None:
            params["until"] = int(until.timestamp()) + 1
        found = []
        for raw in self.iter_edge(f"{account_id}/activities", params):
            activity = Activity.from_graph(raw)
            if activity is None:
                log.warning("an activity of %s cannot be read: %.200r", account_id, raw)
            else:
                found.append(activity)
        return found

    # ------------------------------------------------------------------- reading

    def get_account(self, account_id: str) -> AccountInfo:
        body = self.get(account_id, {"fields": ",".join(ACCOUNT_FIELDS)})
        return AccountInfo.from_graph(body)

    def list_entities(
        self,
        account_id: str,
        level: Level,
        *,
        include_archived: bool = True,
        on_invalid: InvalidHandler | None = None,
    ) -> list[EntityInfo]:
        """Campaigns, ad sets or ads of an account, paused and (by default) archived too.
        An item Rex must not keep raises InvalidAnswerError — or, with `on_invalid`, is
        handed to it and left out, so one bad object does not cost the others."""
        statuses = list(ALL_STATUSES if include_archived else ALL_STATUSES[:2] + ALL_STATUSES[3:])
        params = {"fields": ",".join(ENTITY_FIELDS[level]), "effective_status": statuses}
        edge = f"{account_id}/{EDGE_FOR_LEVEL[level]}"
        found = []
        for item in self.iter_edge(edge, params):
            try:
                found.append(EntityInfo.from_graph(level, item))
            except InvalidAnswerError as error:
                if on_invalid is None:
                    raise
                on_invalid(error)
        return found

    def get_objects(self, object_ids: Sequence[str], fields: Sequence[str]) -> list[BatchResult]:
        """Read several objects by id in batches (deleted objects are readable by id)."""
        query = {"fields": ",".join(fields)}
        return self.batch([BatchRequest("GET", object_id, query) for object_id in object_ids])

    def insights(
        self,
        object_id: str,
        *,
        level: Level,
        since: date,
        until: date,
        fields: Sequence[str],
        breakdowns: Sequence[str] = (),
        time_increment: int | str = 1,
        use_async: bool = False,
        on_invalid: InvalidHandler | None = None,
        stop: threading.Event | None = None,
    ) -> Iterator[InsightRow]:
        """Insights rows of `object_id` for an account-local date range. A row Rex must
        not keep (garbage, or dated outside the range) raises InvalidAnswerError — or,
        with `on_invalid`, is handed to it and left out.

        `stop`, when set while an async report is being waited for, abandons it at once
        (AsyncReportError): a sync whose account already failed stops its other reports."""
        params: dict[str, Any] = {
            "level": level,
            "fields": ",".join(fields),
            "time_range": {"since": since.isoformat(), "until": until.isoformat()},
            "time_increment": time_increment,
            "limit": PAGE_LIMIT,
        }
        if breakdowns:
            params["breakdowns"] = list(breakdowns)
        read_deadline = time.monotonic() + self.options.read_deadline_seconds
        if use_async:
            rows = self._async_report(object_id, params, read_deadline, stop)
        else:
            rows = self.iter_edge(f"{object_id}/insights", params, deadline=read_deadline)
        for raw in rows:
            try:
                yield InsightRow.from_graph(raw, breakdowns, since=since, until=until)
            except InvalidAnswerError as error:
                if on_invalid is None:
                    raise
                on_invalid(error)

    def _async_report(
        self,
        object_id: str,
        params: dict[str, Any],
        read_deadline: float,
        stop: threading.Event | None = None,
    ) -> Iterator[Any]:
        started = self.post(f"{object_id}/insights", params)
        run_id = started.get("report_run_id") if isinstance(started, dict) else None
        if not run_id:
            raise UnexpectedResponseError("the async insights request returned no report_run_id")
        max_wait = self.options.async_max_wait_seconds
        deadline = min(time.monotonic() + max_wait, read_deadline)
        interval = self.options.poll_seconds
        while True:
            status = self.get(str(run_id), {"fields": "async_status,async_percent_completion"})
            state = status.get("async_status") if isinstance(status, dict) else None
            # Not "percent == 100": it can read 100 while the job is still running.
            if state == ASYNC_DONE:
                break
            if state in ASYNC_FAILED:
                raise AsyncReportError(f"insights report {run_id} ended '{state}'")
            if time.monotonic() + interval > deadline:
                raise AsyncReportError(
                    f"insights report {run_id} still '{state}' after {max_wait:g} s"
                )
            if stop is None:
                self._sleep(interval)
            elif stop.wait(interval):
                raise AsyncReportError(f"insights report {run_id} abandoned: the sync stopped")
            interval = min(interval * 1.5, 10.0)
        yield from self.iter_edge(
            f"{run_id}/insights", {"limit": PAGE_LIMIT}, deadline=read_deadline
        )

    # ------------------------------------------------------------------- writing

    def set_status(self, object_id: str, status: str) -> None:
        if status not in ("ACTIVE", "PAUSED", "ARCHIVED"):
            raise InvalidParameterError(
                f"status {status!r} is not one Rex sets", blamed_field="status"
            )
        self._expect_success(self.post(object_id, {"status": status}), object_id)

    def set_budget(self, object_id: str, kind: str, amount_minor: int) -> None:
        """Set `daily` or `lifetime` budget, in the account currency's minor unit."""
        if kind not in ("daily", "lifetime"):
            raise InvalidParameterError(f"budget kind {kind!r}", blamed_field="budget")
        if isinstance(amount_minor, bool) or not isinstance(amount_minor, int) or amount_minor <= 0:
            raise InvalidParameterError(
                f"{kind}_budget must be a positive integer in minor units, got {amount_minor!r}",
                blamed_field=f"{kind}_budget",
            )
        self._expect_success(self.post(object_id, {f"{kind}_budget": amount_minor}), object_id)

    def copy(
        self,
        object_id: str,
        level: Level,
        *,
        status_option: str = "PAUSED",
        deep_copy: bool = False,
        rename_suffix: str | None = None,
        parent_id: str | None = None,
    ) -> CopyResult:
        """Copy a campaign, ad set or ad. Never retried on transient errors: a first
        attempt that timed out may have made the copy already."""
        params: dict[str, Any] = {"status_option": status_option}
        if level in (Level.CAMPAIGN, Level.ADSET):
            params["deep_copy"] = deep_copy
        if rename_suffix is not None:
            params["rename_options"] = {
                "rename_strategy": "DEEP_RENAME" if deep_copy else "ONLY_TOP_LEVEL_RENAME",
                "rename_suffix": rename_suffix,
            }
        if parent_id is not None:
            params["campaign_id" if level == Level.ADSET else "adset_id"] = parent_id
        body = self.post(f"{object_id}/copies", params, idempotent=False)
        return CopyResult.from_graph(level, body)

    @staticmethod
    def _expect_success(body: Any, object_id: str) -> None:
        if not (isinstance(body, dict) and body.get("success") is True):
            raise UnexpectedResponseError(f"Meta did not confirm the update of {object_id}")


def check_token(token: str) -> None:
    """An access token is one word of ASCII letters, digits and a few marks (Meta's are
    letters and digits). A space, a line break or a character pasted along with it (a
    zero-width space, a curly quote) is never part of one: say so, rather than fail deep
    in the HTTP library (a header is Latin-1) or report an unreachable Graph API."""
    if not token:
        raise InputError("token", "an access token is required")
    if not (token.isascii() and token.isprintable()) or any(c.isspace() for c in token):
        raise InputError(
            "token",
            "it contains a character no access token has (a space, a line break, or a "
            "non-ASCII character such as a zero-width space or a curly quote): copy the "
            "token again, as one word",
        )


def encode_params(params: Mapping[str, Any]) -> dict[str, str]:
    """Encode parameters as Meta's SDKs do: lists, dicts and bools as compact JSON."""
    encoded: dict[str, str] = {}
    for key, value in params.items():
        if value is None:
            continue
        if isinstance(value, (list, tuple, dict, bool)):
            encoded[key] = json.dumps(value, separators=(",", ":"))
        else:
            encoded[key] = str(value)
    return encoded


def _batch_item(request: BatchRequest) -> dict[str, str]:
    params = encode_params(request.params)
    item = {"method": request.method, "relative_url": request.path}
    if request.method == "GET":
        if params:
            item["relative_url"] = f"{request.path}?{urlencode(params)}"
    elif params:
        item["body"] = urlencode(params)
    return item
