"""Passwords for the web app's login: the stored form (scrypt, from Python's standard library) that
``python -m studio hash-password`` prints and ``launch.py --auth-file`` reads, and the constant-time check."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

from studio.errors import StudioError

SCRYPT = {"n": 2**14, "r": 8, "p": 1}


def hash_password(password: str, salt: bytes | None = None) -> str:
    """A stored form of a password (scrypt from Python's standard library): what --auth-file holds."""
    salt = salt or secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, dklen=32, **SCRYPT)
    return "scrypt${n}${r}${p}${salt}${digest}".format(
        **SCRYPT, salt=base64.b64encode(salt).decode(), digest=base64.b64encode(digest).decode())


def check_password(password: str, stored: str) -> bool:
    """Constant-time check of a password against a plain one (--auth) or a scrypt hash (--auth-file)."""
    if stored.startswith("scrypt$"):
        try:
            _, n, r, p, salt, digest = stored.split("$")
            computed = hashlib.scrypt(password.encode(), salt=base64.b64decode(salt), dklen=32, n=int(n), r=int(r),
                                      p=int(p))
        except (ValueError, TypeError):
            return False
        return hmac.compare_digest(computed, base64.b64decode(digest))
    return hmac.compare_digest(password.encode(), stored.encode())


def read_auth_file(path: str) -> dict[str, str]:
    """user → scrypt hash, from lines ``user:scrypt$...`` (blank lines and # comments skipped). Plain passwords are
    refused: the file exists so that none sits in a shell history or a file."""
    users = {}
    try:
        lines = open(path, encoding="utf-8").read().splitlines()
    except OSError as exc:
        raise StudioError(f"Cannot read the auth file {path}: {exc}.") from None
    for number, line in enumerate(lines, 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        user, sep, stored = line.partition(":")
        if not sep or not user.strip() or not stored.startswith("scrypt$"):
            raise StudioError(f"{path}, line {number}: expected user:scrypt$… (make one with `python -m studio "
                              "hash-password USER`); plain passwords are not accepted in an auth file.")
        users[user.strip()] = stored.strip()
    if not users:
        raise StudioError(f"{path} holds no user: add a line made by `python -m studio hash-password USER`.")
    return users
