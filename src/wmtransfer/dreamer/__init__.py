"""DreamerV2 (Hafner et al. 2021): world model, actor-critic, agent."""
