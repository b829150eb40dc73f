"""`python -m mesoslite.cli`: the same as the `mesoslite` console script (`run` fast path too)."""

from mesoslite.fastrun import main

main()
