"""Robustness of recommenders to adversarial item text (issue 5): perturbations and their evaluation."""
