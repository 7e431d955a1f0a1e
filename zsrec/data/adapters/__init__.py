"""Adapters from known public formats (Amazon LC-Rec JSON, 84.51 Complete Journey) to zsrec's tables."""

from __future__ import annotations
