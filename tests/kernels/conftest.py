"""Kernel tests run the Triton kernels for real: on CUDA when present, else on CPU through triton's interpreter.

Triton decides "interpreted or compiled" when a kernel is decorated (and lazily imports more of itself at launch,
checking the same switch), so TRITON_INTERPRET=1 is set here, before anything imports triton, and stays set for
this test process. Only code that uses triton is affected."""
import os

import torch

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")
