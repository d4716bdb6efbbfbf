"""The SQL of domain owners: ``Directory``'s methods for VMailMgr's owners."""

from __future__ import annotations

import time

from mailyard.directory.errors import AlreadyExists, InvalidInput, NotFound
from mailyard.directory.model import Owner, canonical_owner_name
from mailyard.directory.store_base import Transactions, has_owner

__all__ = ["OwnerStore"]


class OwnerStore(Transactions):
    """Owners: each manages its own domains."""

    def add_owner(self, name: str, password_hash: str) -> Owner:
        owner = Owner(canonical_owner_name(name), password_hash, time.time())
        with self._write() as conn:
            if has_owner(conn, owner.name):
                raise AlreadyExists(f"owner {owner.name} already exists")
            conn.execute(
                "INSERT INTO owners (name, password_hash, created) VALUES (?, ?, ?)",
                (owner.name, owner.password_hash, owner.created),
            )
        return owner

    def get_owner(self, name: str) -> Owner | None:
        with self._read() as conn:
            row = conn.execute(
                "SELECT name, password_hash, created FROM owners WHERE name = ?",
                (name.strip().lower(),),
            ).fetchone()
        return None if row is None else Owner(*row)

    def list_owners(self) -> list[Owner]:
        with self._read() as conn:
            rows = conn.execute(
                "SELECT name, password_hash, created FROM owners ORDER BY name"
            ).fetchall()
        return [Owner(*row) for row in rows]

    def remove_owner(self, name: str) -> None:
        key = canonical_owner_name(name)
        with self._write() as conn:
            if not has_owner(conn, key):
                raise NotFound(f"no such owner {key}")
            (count,) = conn.execute(
                "SELECT count(*) FROM domains WHERE owner = ?", (key,)
            ).fetchone()
            if count:
                raise InvalidInput(
                    f"owner {key} still owns {count} domain(s); remove them or give them "
                    "to another owner first"
                )
            conn.execute("DELETE FROM owners WHERE name = ?", (key,))

    def set_owner_password(self, name: str, password_hash: str) -> None:
        key = canonical_owner_name(name)
        with self._write() as conn:
            cur = conn.execute(
                "UPDATE owners SET password_hash = ? WHERE name = ?", (password_hash, key)
            )
            if cur.rowcount == 0:
                raise NotFound(f"no such owner {key}")

    def upgrade_owner_password(self, name: str, old_hash: str, new_hash: str) -> bool:
        """Replace ``old_hash`` by ``new_hash`` unless it changed meanwhile."""
        with self._write() as conn:
            cur = conn.execute(
                "UPDATE owners SET password_hash = ? WHERE name = ? AND password_hash = ?",
                (new_hash, name, old_hash),
            )
            return cur.rowcount == 1
