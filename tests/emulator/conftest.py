import sys
from pathlib import Path

# `local` is a top-level package of the repository; make it importable however pytest is run.
REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))
