"""The directory: domains, their owners and their mailboxes (VMailMgr's job).

``model`` holds the values, ``store`` the SQLite tables (all SQL lives
there), ``resolve`` the pure RCPT-time lookup over an immutable snapshot,
``passwords`` and ``logins`` authentication, and ``admin`` the rules of who
may change what. See docs/design/interfaces.md (section L1 ``directory``).
"""

__all__: list[str] = []
