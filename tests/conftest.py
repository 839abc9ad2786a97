from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
SIMAI = SHARED / "simai"


def need_shared():
    if not SIMAI.exists():
        pytest.skip("../shared/simai reference data not present")


@pytest.fixture
def repo() -> Path:
    return REPO


@pytest.fixture
def simai_dir() -> Path:
    need_shared()
    return SIMAI
