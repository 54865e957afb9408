"""Ha & Schmidhuber's World Models (seed 004): V (ConvVAE), M (MDN-RNN), C (linear controller, CMA-ES).

:mod:`.vae`, :mod:`.mdnrnn` and :mod:`.controller` hold the three models and their losses and rollouts;
:mod:`.train` the four stages the workflow runs (``train_vae``, ``train_mdnrnn``, ``train_controller``,
``evaluate_controller``); :mod:`.figures` the report's figures. ``docs/vmc.md`` describes the whole.
"""

from .config import VMCConfig

__all__ = ["VMCConfig"]
