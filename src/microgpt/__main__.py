"""python -m microgpt: the microgpt-train command."""
import sys

from .cli import main

sys.exit(main())
