"""DQN policies (Mnih et al. 2015; MinAtar paper variants) used to collect datasets."""
