"""magnetkit built-in plugin (schedulers) -- being written."""
