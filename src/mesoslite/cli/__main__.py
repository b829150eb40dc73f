"""`python -m mesoslite.cli`: the same as the `mesoslite` console script."""

from mesoslite.cli import main

main()
