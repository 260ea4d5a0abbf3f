"""Figures for the book: one module per chapter, shared styling in ``common``.

Every function returns a ``matplotlib.figure.Figure``; pages glue it.
"""
