"""Data only: the assets of the embedded default model (see ../README.md)."""
