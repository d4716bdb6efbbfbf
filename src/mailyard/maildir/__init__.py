"""The mail store: Maildir delivery and POP3's maildrop (DESIGN §4).

``names`` makes and reads Maildir file names (pure), ``deliver`` puts one
message into a Maildir durably (qmail-local's order plus a directory sync),
``drop`` is POP3's locked view of one Maildir (qmail-pop3d's job).
Synchronous; every durable step goes through ``mailyard.fsio``.
"""

__all__: list[str] = []
