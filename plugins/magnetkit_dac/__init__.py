"""magnetkit built-in plugin (dac) -- being written."""
