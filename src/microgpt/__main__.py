"""python -m microgpt: the microgpt-train command (microgpt.commands.train)."""
import sys

from .commands.train import main

sys.exit(main())
