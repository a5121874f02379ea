import pytest


@pytest.fixture
def spec(settings):
    return settings.dataset
