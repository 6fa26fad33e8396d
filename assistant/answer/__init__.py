"""Answers: statements chosen and cited from the retrieved passages, with a confidence, or an abstention."""
