"""Access tokens at rest: Fernet (AES-128-CBC + HMAC-SHA256) from `cryptography`.

The key comes from `REX_SECRET_KEY`, or from a key file generated on first use and
readable only by its owner (mode 0600). Tokens are decrypted only to build a Graph
client; they never enter logs, exception texts or the UI.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

from core.errors import RexError
from core.settings import get_settings


class SecretKeyError(RexError):
    """The encryption key is missing, unreadable or does not match the stored tokens."""


class SecretBox:
    def __init__(self, key: bytes) -> None:
        try:
            self._fernet = Fernet(key)
        except (ValueError, TypeError):
            raise SecretKeyError(
                "REX_SECRET_KEY is not a valid Fernet key (32 url-safe base64-encoded "
                'bytes); generate one with `python -c "from cryptography.fernet import '
                'Fernet; print(Fernet.generate_key().decode())"`'
            ) from None

    def encrypt(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode()).decode("ascii")

    def decrypt(self, ciphertext: str) -> str:
        try:
            return self._fernet.decrypt(ciphertext.encode("ascii")).decode()
        except InvalidToken:
            raise SecretKeyError(
                "a stored access token cannot be decrypted with the current key; "
                "restore the original REX_SECRET_KEY / key file, or reconnect the account"
            ) from None


def secret_box() -> SecretBox:
    settings = get_settings()
    if settings.secret_key:
        return SecretBox(settings.secret_key.encode())
    return SecretBox(_load_or_create_key_file(settings.key_file))


def _load_or_create_key_file(path: Path) -> bytes:
    if path.exists():
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            raise SecretKeyError(
                f"key file {path} is readable by others (mode {mode:o}); run `chmod 600 {path}`"
            )
        return path.read_bytes().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    key = Fernet.generate_key()
    # O_EXCL: if another process created it meanwhile, use theirs.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_bytes().strip()
    with os.fdopen(fd, "wb") as handle:
        handle.write(key)
    return key
