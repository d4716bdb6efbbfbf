"""mailyard."""
