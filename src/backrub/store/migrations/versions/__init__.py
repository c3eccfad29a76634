"""One file per schema revision, in a single line of descent (a test checks)."""
