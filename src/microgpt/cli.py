"""microgpt-train's command, at the name it had first: microgpt.commands.train."""
from .commands.train import main  # noqa: F401
