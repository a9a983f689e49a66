import sys

from scaler.cli import main

sys.exit(main(prog="python -m scaler"))
