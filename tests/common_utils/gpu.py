"""What the GPU checks (tests/test_gpu.py) run over; tests/test_gpu_check.py counts them."""

import torch

AUTOCAST_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}
GPU_ESTIMATORS = ("hsic", "permutation", "permutation_debiased", "rff")
