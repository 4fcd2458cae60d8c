"""magnetkit built-in plugin (encodec) -- being written."""
