import os
import warnings

import pytest

# Keep torch to the CI machine's two cores and off any GPU a developer might have.
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
warnings.filterwarnings("ignore", message=".*Gym has been unmaintained.*")


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """Test models are small: one torch thread is as fast, and a busy 2-core machine cannot
    oversubscribe it. Benchmarks (not tests) measure at torch's default threads."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
