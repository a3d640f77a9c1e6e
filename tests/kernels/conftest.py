"""Kernel tests run the Triton kernels for real: on CUDA when present, else on CPU under TRITON_INTERPRET=1
(set here, before anything imports triton)."""
import os

import torch

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")
