"""python -m microgpt.report: the microgpt-report command (microgpt.commands.report)."""
import sys

from .commands.report import main

if __name__ == "__main__":
    sys.exit(main())
