"""Every error Rex raises is a RexError with a hint, and connecting an account to a
Graph URL that answers garbage — or with a token or URL that cannot be one — ends in a
typed error that says what to do, never in an exception from the HTTP library.

The Graph URLs here are a real loopback HTTP server (http.server) that answers what a
misconfigured proxy or a wrong address would."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from pydantic import BaseModel, ValidationError, field_validator
from sqlalchemy import Engine
from streamlit.testing.v1 import AppTest

import core
from core.access.actor import SYSTEM
from core.accounts import connect_account, list_accounts
from core.crypto import SecretKeyError
from core.errors import InputError, RexError
from core.meta import GraphClient, GraphError
from core.meta.errors import TokenInvalidError, TransientError, UnexpectedResponseError
from core.money import MoneyError, check_currency
from core.rules.windows import Window, WindowError
from tests.signed import signed_page

ROOT = Path(__file__).resolve().parent.parent
ACCOUNT = "act_1010000001"
TOKEN = "EAAsometoken1234567890"

# Exceptions of core that are not errors Rex raises to anyone: control flow inside one
# module, or converted before they leave it.
INTERNAL = {
    "core.meta.transport.DeadlineExceeded",  # a requests exception the client converts
    "core.sandbox.graph.GraphFailure",  # the sandbox's answer of a Meta error, over HTTP
}


def core_exception_classes() -> list[type[BaseException]]:
    found = []
    for module_info in pkgutil.walk_packages(core.__path__, "core."):
        if module_info.name.endswith("__main__"):
            continue
        module = importlib.import_module(module_info.name)
        for value in vars(module).values():
            if (
                inspect.isclass(value)
                and issubclass(value, BaseException)
                and value.__module__ == module.__name__
            ):
                found.append(value)
    return found


def test_every_exception_class_of_core_is_a_rex_error() -> None:
    classes = core_exception_classes()
    assert len(classes) > 30
    outside = [
        f"{cls.__module__}.{cls.__name__}"
        for cls in classes
        if not issubclass(cls, RexError) and f"{cls.__module__}.{cls.__name__}" not in INTERNAL
    ]
    assert outside == []


def test_every_rex_error_has_a_hint_on_the_class() -> None:
    assert RexError("x").hint == ""
    assert InputError("field", "problem").hint == ""
    for cls in core_exception_classes():
        if issubclass(cls, RexError):
            assert isinstance(cls.hint, str), cls
    assert GraphError("x").hint  # Meta's errors keep theirs
    assert "Reconnect the account" in TokenInvalidError("expired").hint


def test_the_errors_validators_raise_are_still_value_errors() -> None:
    class Condition(BaseModel):
        window: str
        currency: str

        @field_validator("window")
        @classmethod
        def _window(cls, value: str) -> str:
            return Window.parse(value).name

        @field_validator("currency")
        @classmethod
        def _currency(cls, value: str) -> str:
            return check_currency(value)

    with pytest.raises(ValidationError) as caught:
        Condition(window="last_200d", currency="XYZ")
    problems = {error["loc"][0]: error["msg"] for error in caught.value.errors()}
    assert "N must be from 2 to 90" in problems["window"]
    assert "ISO 4217" in problems["currency"]
    assert issubclass(MoneyError, ValueError) and issubclass(WindowError, ValueError)


def test_an_empty_token_is_an_input_error_of_the_client() -> None:
    with pytest.raises(InputError) as caught:
        GraphClient("", base_url="http://127.0.0.1:9")
    assert caught.value.field == "token"


# --- a Graph URL that answers what the Graph API never does -----------------------------


@dataclass
class Garbage:
    """A loopback HTTP server answering every request with one fixed reply."""

    status: int = 404
    content_type: str = "text/html"
    body: bytes = b"<html><body><h1>404 Not Found</h1></body></html>"
    requests: list[str] = field(default_factory=list)
    url: str = ""


@pytest.fixture
def garbage() -> Iterator[Garbage]:
    reply = Garbage()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def _answer(self) -> None:
            reply.requests.append(f"{self.command} {self.path}")
            self.send_response(reply.status)
            self.send_header("Content-Type", reply.content_type)
            self.send_header("Content-Length", str(len(reply.body)))
            self.end_headers()
            self.wfile.write(reply.body)

        do_GET = do_POST = _answer

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    reply.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield reply
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize(
    ("status", "content_type", "body"),
    [
        (404, "text/html", b"<html><body><h1>404 Not Found</h1></body></html>"),
        (200, "text/html", b"<html><body>Welcome to nginx!</body></html>"),
        (403, "application/json", b'{"message": "Forbidden"}'),
        (200, "application/json", b'{"error": "nope"}'),
    ],
)
def test_a_graph_url_answering_garbage_says_to_check_the_url(
    db: Engine, garbage: Garbage, status: int, content_type: str, body: bytes
) -> None:
    garbage.status, garbage.content_type, garbage.body = status, content_type, body
    with pytest.raises(UnexpectedResponseError) as caught:
        connect_account(ACCOUNT, TOKEN, graph_url=garbage.url, by=SYSTEM)
    hint = caught.value.hint
    assert f"The server at {garbage.url} answered HTTP {status}" in hint
    assert "Check the Graph API URL" in hint and "nothing was stored" in hint
    assert "For a change" not in hint  # nothing was being changed
    assert TOKEN not in str(caught.value) + hint
    assert list_accounts() == []


def test_a_graph_url_answering_a_bare_server_error_says_try_again(
    db: Engine, garbage: Garbage
) -> None:
    garbage.status = 502
    with pytest.raises(TransientError) as caught:
        connect_account(ACCOUNT, TOKEN, graph_url=garbage.url, by=SYSTEM)
    assert "temporary problem" in caught.value.hint and "nothing was stored" in caught.value.hint
    assert len(garbage.requests) > 1  # a read: retried before giving up
    assert list_accounts() == []


@pytest.mark.parametrize(
    "token",
    [
        "EAAsome\u200btoken1234567890",  # a zero-width space pasted along
        "“EAAsometoken1234567890”",  # curly quotes from a document
        "EAAsome\ntoken1234567890",  # a line break
        "EAAsome token1234567890",
    ],
)
def test_a_token_that_cannot_be_one_is_refused_before_anything_is_sent(
    db: Engine, garbage: Garbage, token: str
) -> None:
    with pytest.raises(InputError) as caught:
        connect_account(ACCOUNT, token, graph_url=garbage.url, by=SYSTEM)
    assert caught.value.field == "token" and "copy the token again" in caught.value.problem
    assert garbage.requests == []
    assert list_accounts() == []


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://[::1", "Invalid IPv6 URL"),
        ("http://127.0.0.1:99999", "out of range"),
        ("http://localhost:port", "integer"),
    ],
)
def test_a_graph_url_that_cannot_be_one_is_an_input_error(db: Engine, url: str, why: str) -> None:
    with pytest.raises(InputError) as caught:
        connect_account(ACCOUNT, TOKEN, graph_url=url, by=SYSTEM)
    assert caught.value.field == "graph_url" and why in caught.value.problem
    assert "https://graph.facebook.com" in caught.value.problem


# --- the Accounts page -------------------------------------------------------------------


def connect_on_the_page(account: str, token: str, graph_url: str) -> AppTest:
    app = signed_page("pages/accounts.py", timeout=60)
    app.run()
    app.text_input(key="connect_account").set_value(account)
    app.text_input(key="connect_token").set_value(token)
    app.text_input(key="connect_graph_url").set_value(graph_url)
    next(b for b in app.button if b.label == "Check and connect").click().run()
    assert not app.exception, [e.value for e in app.exception]
    return app


def test_the_page_shows_what_to_do_about_a_garbage_graph_url(db: Engine, garbage: Garbage) -> None:
    app = connect_on_the_page(ACCOUNT, TOKEN, garbage.url)
    shown = app.error[0].value
    assert "Check the Graph API URL" in shown and "HTTP 404 with an unexpected body" in shown


def test_the_page_says_when_the_key_to_encrypt_the_token_is_lost(
    db: Engine, sandbox, key_file: Path
) -> None:  # type: ignore[no-untyped-def]
    first, second = sandbox.account_ids[:2]
    connect_account(first, sandbox.token, graph_url=sandbox.url, by=SYSTEM)  # makes the key file
    key_file.unlink()
    app = connect_on_the_page(second, sandbox.token, sandbox.url)
    shown = app.error[0].value
    assert "key" in shown and first in shown  # names the account whose token it holds
    assert [a.external_id for a in list_accounts()] == [first]
    with pytest.raises(SecretKeyError):
        connect_account(second, sandbox.token, graph_url=sandbox.url, by=SYSTEM)
