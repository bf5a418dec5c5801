"""Shared test settings: quiet TensorFlow, small thread pools (the suite runs on 2 cores)."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


import pytest  # noqa: E402


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """A four-image CSV data set (tests/model_fixtures.py) for the command-line and training tests."""
    from model_fixtures import write_tiny_dataset

    return write_tiny_dataset(tmp_path_factory.mktemp("data"))
