"""The IMAP adapter's command handlers (server/imapd.py runs the loop).

One module per group of commands: ``mailboxes`` (LIST, CREATE, STATUS …),
``selected`` (SELECT, EXPUNGE, CLOSE …), ``fetch``, ``flags`` (STORE),
``search``, ``sortthread``, ``transfer`` (COPY, MOVE), ``append``,
``quota``; ``updates`` sends the untagged updates of the selected mailbox,
``watcher`` wakes idling sessions, ``numbers`` and ``listing`` are the
pure helpers (sequence sets, LIST patterns).
"""

__all__: list[str] = []
