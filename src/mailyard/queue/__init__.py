"""The durable mail queue (qmail-queue and the files qmail-send keeps).

``mailyard.queue.store`` is the public face: ``Queue``, ``QueueWriter``,
``Envelope``, ``Outcome`` and the rest; ``mailyard.queue.schedule`` holds the
pure retry rules. The on-disk states, the commit point and what a crash
leaves are specified in docs/design/queue.md.
"""

from __future__ import annotations

__all__: list[str] = []
