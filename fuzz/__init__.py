"""Fuzz harnesses for the sans-I/O cores and the MIME parser (issue 7).

``python -m fuzz.run --seconds N`` drives every harness for N seconds each;
see docs/drills.md.
"""

__all__: list[str] = []
