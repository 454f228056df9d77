"""Analyses: each takes a model (and a prompt) and returns typed numbers; viz draws their figures."""
