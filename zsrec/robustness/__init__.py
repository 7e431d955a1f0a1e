"""Robustness of recommenders to adversarial item text: perturbations and their evaluation."""
