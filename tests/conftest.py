import os
import warnings

# Keep torch to the CI machine's two cores and off any GPU a developer might have.
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
warnings.filterwarnings("ignore", message=".*Gym has been unmaintained.*")
