"""magnetkit built-in plugin (clap) -- being written."""
