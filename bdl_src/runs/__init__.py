"""The book's runs: each chapter's models trained through the cache (``cache.cached``)
with the book's settings, and their headline metrics. The CLI and the results page call
these; the chapter pages make the very same ``cached`` calls in plain sight, so all
three share one cache entry per model.

Each module here defines ``cli_run(seed, refresh) -> dict`` of headline metrics.
"""
