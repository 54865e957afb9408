"""Episode files, datasets of environment sets, and sequence replay."""
