"""The hostile suite's fixtures (defined in hostile_helpers, which the tests also import their helpers from)."""

from hostile_helpers import _cache_in_tmp, as_nobody, shared_tmp, shop_dir, trained_head, trained_model

__all__ = ["_cache_in_tmp", "as_nobody", "shared_tmp", "shop_dir", "trained_head", "trained_model"]
