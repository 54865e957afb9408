"""wmtransfer: world-model pre-training and transfer across games, as a Snakemake workflow."""

__version__ = "0.1.0"
