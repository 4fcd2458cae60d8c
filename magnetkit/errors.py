"""The few typed errors magnetkit raises; the CLI turns each into one line and an exit code."""

from __future__ import annotations


class MagnetkitError(Exception):
    """Base class of every error magnetkit reports to a user (exit code 1)."""

    exit_code = 1


class UsageError(MagnetkitError):
    """A command, argument or parameter the user gave is wrong (exit code 2)."""

    exit_code = 2


class RecipeError(UsageError):
    """A recipe (or its overrides) failed validation; carries every problem at once."""

    def __init__(self, problems: list[str], source: str | None = None) -> None:
        self.problems = list(problems)
        self.source = source
        where = f" in {source}" if source else ""
        if len(self.problems) == 1:
            super().__init__(f"{self.problems[0]}{where}")
        else:
            super().__init__(f"{len(self.problems)} problems{where}:\n" + "\n".join(f"  {p}" for p in self.problems))


class ComponentNotFoundError(UsageError):
    """A registry name that no loaded plugin provides."""


class PluginError(MagnetkitError):
    """A plugin failed to load, registered a duplicate name or implemented an unknown hook."""


class CheckpointError(MagnetkitError):
    """A checkpoint is missing, unsafe, corrupt, or does not match the recipe."""


class HubUnavailableError(CheckpointError):
    """A hub id is not in the local cache and the hub cannot be reached."""


class AudioError(MagnetkitError):
    """An audio file is missing, empty, corrupt or unsupported."""
