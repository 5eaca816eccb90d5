from __future__ import annotations

import sys
from pathlib import Path

# the simulated-engine helpers (fake clock, in-memory vault) are shared with these tests
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "simulated"))
