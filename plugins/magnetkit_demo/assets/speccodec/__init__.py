"""Data only: the speccodec of the embedded default model."""
