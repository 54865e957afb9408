"""Frame stacking along the channel axis (Mnih et al. 2015 stack the last 4 frames)."""

from __future__ import annotations

from collections import deque

import numpy as np


class FrameStack:
    """Keeps the last ``k`` frames of an episode; at reset the first frame fills every slot."""

    def __init__(self, k: int):
        self.k = int(k)
        self.frames: deque[np.ndarray] = deque(maxlen=self.k)

    def reset(self, frame: np.ndarray) -> np.ndarray:
        self.frames.clear()
        for _ in range(self.k):
            self.frames.append(frame)
        return self.stacked()

    def step(self, frame: np.ndarray) -> np.ndarray:
        self.frames.append(frame)
        return self.stacked()

    def stacked(self) -> np.ndarray:
        if self.k == 1:
            return self.frames[0]
        return np.concatenate(list(self.frames), axis=0)
