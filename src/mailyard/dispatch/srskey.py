"""The SRS secret: 32 random bytes, hex, in ``<state>/srs.secret`` (mode 0600).

Made at ``mailyard init`` or at first use. Every process that forwards mail
or checks a bounce address (the lspawn children, the RCPT policy) must see
the same secret, so it is created once and never replaced: written to a
private temporary name, fsync'd, then hard-linked to the final name (a link
fails if the name exists, so of two processes racing to create it one wins
and the other reads the winner's), and the directory is synced. A reader
can therefore never see a half-written secret.
"""

from __future__ import annotations

import os
import secrets
import threading
from typing import Final

from mailyard import fsio

__all__ = ["SECRET_BYTES", "SECRET_FILE", "ensure_secret", "load_secret"]

SECRET_FILE: Final = "srs.secret"  # noqa: S105 (a file name, not a password)
SECRET_BYTES: Final = 32
_MAX_READ: Final = 4096


def load_secret(state_dir: str) -> bytes | None:
    """The secret, or None when there is none yet (or it is unreadable junk)."""
    path = os.path.join(state_dir, SECRET_FILE)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    try:
        raw = os.read(fd, _MAX_READ)
    finally:
        os.close(fd)
    try:
        secret = bytes.fromhex(raw.decode("ascii").strip())
    except (UnicodeDecodeError, ValueError):
        return None
    return secret if len(secret) >= 16 else None


def ensure_secret(state_dir: str) -> bytes:
    """The secret, created first if there is none; OSError if it cannot be."""
    found = load_secret(state_dir)
    if found is not None:
        return found
    if os.path.lexists(os.path.join(state_dir, SECRET_FILE)):
        # Present but unreadable: replacing it would break every address
        # made with the old one; the operator must look.
        raise OSError(f"{SECRET_FILE} in {state_dir} is not a hex secret of 16 bytes or more")
    text = (secrets.token_hex(SECRET_BYTES) + "\n").encode("ascii")
    tmp_name = f".{SECRET_FILE}.{os.getpid()}.{threading.get_ident()}"
    fd = fsio.create_excl(state_dir, tmp_name, 0o600)
    tmp_path = os.path.join(state_dir, tmp_name)
    try:
        try:
            fsio.write_all(fd, text)
            fsio.fsync_file(fd)
        finally:
            os.close(fd)
        try:
            fsio.link_into(tmp_path, os.path.join(state_dir, SECRET_FILE))
        except FileExistsError:
            pass  # another process won the race: use its secret
        fsio.fsync_dir(state_dir)
    finally:
        os.unlink(tmp_path)
    secret = load_secret(state_dir)
    if secret is None:
        raise OSError(f"{SECRET_FILE} in {state_dir} could not be read back")
    return secret
