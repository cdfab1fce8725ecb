"""Access tokens at rest: Fernet (AES-128-CBC + HMAC-SHA256) from `cryptography`.

The key comes from `REX_SECRET_KEY`, or from a key file readable only by its owner (mode
0600). Tokens are decrypted only to build a Graph client; they never enter logs,
exception texts or the UI.

The key is kept apart from the database (whoever has both has the tokens), so losing it
loses the tokens: a key file is generated only when an account is connected
(`secret_box(create=True)`) and never while the database holds tokens encrypted with
another key — a fresh key would hide the loss until every Graph call failed. Commands
that use tokens call `verify_key()` first, so a missing or changed key stops Rex with
one message before anything is written.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import TYPE_CHECKING

from cryptography.fernet import Fernet, InvalidToken

from core.errors import RexError
from core.settings import Settings, get_settings

if TYPE_CHECKING:
    from sqlalchemy import Engine

# what to do when the key is lost, in every message that says so
_RECONNECT = (
    "or run `python -m core accounts remove ACCOUNT` for each and connect them again "
    "with `accounts add`"
)


class SecretKeyError(RexError):
    """The encryption key is missing, unreadable or does not match the stored tokens."""


class SecretBox:
    def __init__(self, key: bytes, source: str = "REX_SECRET_KEY") -> None:
        try:
            self._fernet = Fernet(key)
        except (ValueError, TypeError):
            raise SecretKeyError(
                f"{source} is not a valid Fernet key (32 url-safe base64-encoded "
                'bytes); generate one with `python -c "from cryptography.fernet import '
                'Fernet; print(Fernet.generate_key().decode())"`'
            ) from None

    def encrypt(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode()).decode("ascii")

    def decrypt(self, ciphertext: str) -> str:
        try:
            return self._fernet.decrypt(ciphertext.encode("ascii")).decode()
        except (InvalidToken, ValueError):
            raise SecretKeyError(
                "a stored access token cannot be decrypted with the current key; "
                "restore the original REX_SECRET_KEY / key file, or reconnect the account"
            ) from None

    def can_decrypt(self, ciphertext: str) -> bool:
        try:
            self.decrypt(ciphertext)
        except SecretKeyError:
            return False
        return True


def secret_box(*, create: bool = False, engine: Engine | None = None) -> SecretBox:
    """The box for the configured key. Without `create`, a missing key file is an error
    (SecretKeyError); with it (connecting an account), a key file is generated — unless
    the database at `engine` already holds encrypted tokens, which a new key could never
    decrypt."""
    settings = get_settings()
    if settings.secret_key:
        return SecretBox(settings.secret_key.get_secret_value().encode())
    path = settings.key_file
    if path.exists():
        return SecretBox(_read_key_file(path), f"the key file {path}")
    if not create:
        raise SecretKeyError(_missing_key_message(settings, _stored_accounts(engine)))
    stored = _stored_accounts(engine)
    if stored:
        raise SecretKeyError(_missing_key_message(settings, stored))
    return SecretBox(_create_key_file(path))


def verify_key(engine: Engine | None = None) -> None:
    """Raise SecretKeyError, naming the accounts, when the database holds encrypted
    tokens that the configured key cannot decrypt (the key file is missing, or the key
    was changed). One decryption per account: cheap enough for the start of a command."""
    stored = _stored_accounts(engine)
    if not stored:
        return
    settings = get_settings()
    box = secret_box(engine=engine)  # raises when the key file is missing
    failing = [external_id for external_id, token in stored if not box.can_decrypt(token)]
    if failing:
        where = (
            "REX_SECRET_KEY"
            if settings.secret_key
            else f"the key file {settings.key_file} (REX_SECRET_KEY_FILE)"
        )
        raise SecretKeyError(
            f"{where} does not decrypt the access tokens stored for {_names(failing)}: "
            "they were encrypted with another key. Restore that key (it is not in the "
            f"database backup), {_RECONNECT}"
        )


# ---------------------------------------------------------------------- helpers


def _stored_accounts(engine: Engine | None) -> list[tuple[str, str]]:
    """(external id, encrypted token) of every account that has a token stored."""
    from sqlalchemy import select

    from core.db import read_session
    from core.db.models import AdAccount

    with read_session(engine) as session:
        rows = session.execute(
            select(AdAccount.external_id, AdAccount.token_encrypted).order_by(AdAccount.id)
        ).all()
    return [(external_id, token) for external_id, token in rows if token]


def _names(external_ids: list[str]) -> str:
    shown = ", ".join(external_ids[:5])
    more = f" and {len(external_ids) - 5} more" if len(external_ids) > 5 else ""
    return f"{len(external_ids)} account(s) ({shown}{more})"


def _missing_key_message(settings: Settings, stored: list[tuple[str, str]]) -> str:
    path = settings.key_file
    if not stored:
        return (
            f"the key file {path} is missing; it is created when the first account is "
            "connected (`python -m core accounts add`), or set REX_SECRET_KEY"
        )
    return (
        f"the key file {path} is missing, and the access tokens stored for "
        f"{_names([external_id for external_id, _ in stored])} were encrypted with it: "
        "restore it from where you keep it (it is not in the database backup; or set "
        f"REX_SECRET_KEY / REX_SECRET_KEY_FILE to it), {_RECONNECT}"
    )


def _read_key_file(path: Path) -> bytes:
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise SecretKeyError(
            f"key file {path} is readable by others (mode {mode:o}); run `chmod 600 {path}`"
        )
    try:
        return path.read_bytes().strip()
    except OSError as error:
        raise SecretKeyError(
            f"key file {path} cannot be read ({error.strerror}); give Rex's user read access"
        ) from None


def _create_key_file(path: Path) -> bytes:
    path.parent.mkdir(parents=True, exist_ok=True)
    key = Fernet.generate_key()
    # O_EXCL: if another process created it meanwhile, use theirs.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return _read_key_file(path)
    with os.fdopen(fd, "wb") as handle:
        handle.write(key)
    return key
