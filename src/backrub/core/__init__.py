"""backrub's core: the massage itself. Pure Python — no I/O beyond package data, no clock,
no framework, no database."""
