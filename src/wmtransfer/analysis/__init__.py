"""Curves, statistics, latent analysis and figures."""
