"""Test-wide settings: quiet TensorFlow logs in this process and in child processes."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
