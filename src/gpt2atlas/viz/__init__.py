"""Plotly figures and their export (interactive HTML + static PNG)."""
