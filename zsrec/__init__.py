"""zsrec: zero-shot recommendation of new e-commerce categories and items from their text."""

from __future__ import annotations

__version__ = "0.1.0"
