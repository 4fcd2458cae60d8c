"""Data only: the caption-t5 of the embedded default model."""
