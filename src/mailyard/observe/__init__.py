"""Counting what the logs say: metrics and recent figures for every process.

``events`` maps log events to metric updates (pure), ``recent`` keeps the
last hour's deliveries per minute, ``recorder`` wires both to
``log.set_event_hook`` in each process (``init_metrics``).
"""

__all__: list[str] = []
