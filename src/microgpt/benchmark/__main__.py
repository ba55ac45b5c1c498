"""python -m microgpt.benchmark."""
import sys

from . import main

sys.exit(main())
