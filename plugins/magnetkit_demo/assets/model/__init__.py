"""Data only: the model of the embedded default model."""
