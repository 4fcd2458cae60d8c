"""Core CLI commands that live in their own modules; each exposes ``add_commands(subparsers)``."""

CORE_COMMANDS: list = []
