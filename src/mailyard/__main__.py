"""``python -m mailyard`` is the ``mailyard`` command."""

from mailyard.cli.main import main

main()
