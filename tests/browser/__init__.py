"""Browser tests: Playwright drives Debian's Chromium against a real `backrub serve`.

A package (this file) so that the Playwright fixture can be package-scoped: it ends when the last
browser test has run. The sync Playwright API marks its event loop as running in the main thread
while it lives, and `asyncio.run` (the terminal player's tests) refuses to start under it.
"""
