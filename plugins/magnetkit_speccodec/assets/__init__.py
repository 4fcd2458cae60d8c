"""Data only: the speccodec fitted once and shipped with the plugin (speccodec.json + .safetensors)."""
