"""magnetkit built-in plugin (samplers) -- being written."""
