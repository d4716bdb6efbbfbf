"""Migration from the seed's stack: qmail control files, VMailMgr's passwd.cdb, Courier-IMAP.

Each source format has a pure parser (bytes or text in, plan values out,
no I/O) and an applier that turns a plan into directory and Maildir
changes and reports what it created and what it could not map. The layer
sits above ``directory`` and ``maildir`` and below ``cli``.
"""
