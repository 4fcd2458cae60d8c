"""The MAGNeT transformer and its configuration."""
