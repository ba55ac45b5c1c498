"""python -m microgpt.sample: the microgpt-sample command (microgpt.commands.sample)."""
import sys

from .commands.sample import main

if __name__ == "__main__":
    sys.exit(main())
