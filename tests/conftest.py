"""Suite-wide settings: the CI box has 2 cores and pytest-xdist runs 2 workers, so each worker's torch
gets one thread (two threads per worker oversubscribe the cores and make small-model tests ~10x slower)."""

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")
