"""The arithmetic every area shares, written once: PCA, exact nearest neighbours, and thread settings."""
