"""`python -m runtime ...` = `eagan ...`."""

from runtime.cli import main

main()
