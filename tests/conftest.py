import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked slow run only with EAGAN_SLOW=1 (the CI command runs the fast suite)."""
    if os.environ.get("EAGAN_SLOW") == "1":
        return
    skip = pytest.mark.skip(reason="slow: set EAGAN_SLOW=1 to run")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)
