"""Shared test settings: hypothesis runs the same examples every time."""
from hypothesis import settings

settings.register_profile("microgpt", derandomize=True, deadline=None, print_blob=True)
settings.load_profile("microgpt")
