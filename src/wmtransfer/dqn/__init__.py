"""DQN policies (Mnih et al. 2015; MinAtar paper variants) used to collect datasets.

``config.DQNConfig`` (the ``dqn`` config section), ``networks`` (MLP, MinAtar conv, Nature DQN, C51
head), ``losses`` (Huber TD loss), ``replay`` (transition ring buffer), ``agent`` (acting and updates),
``checkpoint`` (policy files), ``policies`` (behaviour policies for collection) and ``atari_agents``
(loader of the external Atari checkpoints). The training loop is :mod:`wmtransfer.train.dqn`.
"""
