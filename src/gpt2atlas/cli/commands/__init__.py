"""One module per group of commands; each defines `register(app)` and is found automatically."""
