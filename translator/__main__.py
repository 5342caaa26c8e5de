"""``python -m translator`` is the ``translate`` command."""
from translator.cli import main

main()
