"""`python -m cnndsl`."""
from .cli import run

run()
