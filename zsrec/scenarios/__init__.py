"""Uses of the zero-shot models beyond "recommend new items", each with its evaluation on real data.

- `adoption`: the one calibrated P(user adopts category) the others rest on (features + calibration).
- `calibration`: Platt / isotonic calibrators, expected calibration error and the reliability table.
- `audience`: rank users for a piece of text (an ad, a coupon, a new product description).
- `similar`: related items, optionally only in other categories (cross-category recommendation).
- `forecast`: how many users will adopt a new category (sum of calibrated probabilities).
- `profile`: a user's top interest tags (category names) and the history items behind each.
"""
