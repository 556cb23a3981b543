"""Developer tools (comparisons, measurements); not needed at run time."""
