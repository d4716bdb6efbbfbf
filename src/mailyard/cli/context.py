"""Shared state of one CLI invocation: the state folder and what lives in it."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from mailyard.config import CONFIG_NAME, Config, ConfigError, load_config

__all__ = ["CliContext", "CliError"]


class CliError(Exception):
    """A user error: printed as one line, exit status 1."""


@dataclass
class CliContext:
    state_dir: str
    _config: Config | None = field(default=None, repr=False)

    def config(self) -> Config:
        """The configuration; the state folder must have been initialised."""
        if self._config is None:
            if not os.path.exists(os.path.join(self.state_dir, CONFIG_NAME)):
                raise CliError(
                    f"{self.state_dir} is not a mailyard state folder (run 'mailyard init')"
                )
            try:
                self._config = load_config(self.state_dir)
            except ConfigError as exc:
                raise CliError(f"configuration: {exc}") from exc
        return self._config
