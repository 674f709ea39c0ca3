"""Allow `python -m m2maudit`."""

from m2maudit.cli import main

main()
