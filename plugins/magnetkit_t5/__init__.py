"""magnetkit built-in plugin (t5) -- being written."""
