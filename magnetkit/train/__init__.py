"""Training and fine-tuning MAGNeT models (paper §3, audiocraft's MAGNeT solver)."""
