"""The training loops that the workflow rules run."""
