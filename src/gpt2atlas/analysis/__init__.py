"""Analyses: each takes a model (and a prompt), returns numbers + plotly figures."""
