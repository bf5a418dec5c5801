"""Shared test settings: quiet TensorFlow, small thread pools (the suite runs on 2 cores)."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
