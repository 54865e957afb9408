"""Game datasets with checksum validation, and the game-balanced union of an environment set."""

from __future__ import annotations

import numpy as np
import pytest

from wmtransfer.config import from_dict
from wmtransfer.data.dataset import GameDataset, cut_episode, iterate_batches, union_replay
from wmtransfer.data.episodes import EpisodeError
from wmtransfer.train.collect import DatasetConfig, collect_dataset


@pytest.fixture(scope="module")
def datasets(tmp_path_factory):
    """Random-policy datasets of two MinAtar games of different sizes."""
    root = tmp_path_factory.mktemp("datasets")
    sizes = {"minatar-breakout": 400, "minatar-asterix": 700}
    for game, steps in sizes.items():
        cfg = from_dict(DatasetConfig, {"random_steps": steps, "policy_steps": 0})
        collect_dataset(game, root / game, cfg)
    return root, sizes


def test_game_dataset_reads_and_validates(datasets):
    root, sizes = datasets
    ds = GameDataset(root / "minatar-asterix")
    assert ds.game == "minatar-asterix" and ds.num_steps == sizes["minatar-asterix"]
    eps = list(ds.episodes())
    assert len(eps) == ds.num_episodes and all(ep["obs"].dtype == np.uint8 for ep in eps)


def _copy(src, dst):
    import shutil

    shutil.copytree(src, dst)
    return dst


def test_checksum_mismatch_names_the_file(datasets, tmp_path):
    root, _ = datasets
    ds_dir = _copy(root / "minatar-breakout", tmp_path / "b")
    victim = sorted((ds_dir / "episodes").glob("*.npz"))[1]
    data = bytearray(victim.read_bytes())
    data[-30] ^= 0xFF
    victim.write_bytes(bytes(data))
    with pytest.raises(EpisodeError, match=rf"{victim.name}: checksum mismatch"):
        GameDataset(ds_dir).validate()


def test_truncated_or_missing_file_is_named(datasets, tmp_path):
    root, _ = datasets
    ds_dir = _copy(root / "minatar-breakout", tmp_path / "b")
    victim = sorted((ds_dir / "episodes").glob("*.npz"))[2]
    victim.write_bytes(victim.read_bytes()[:100])
    with pytest.raises(EpisodeError, match=victim.name):
        GameDataset(ds_dir).validate()
    with pytest.raises(EpisodeError, match=rf"{victim.name}: unreadable"):
        list(GameDataset(ds_dir).episodes(verify=False))
    victim.unlink()
    with pytest.raises(EpisodeError, match=victim.name):
        GameDataset(ds_dir).validate()


def test_cut_episode_ends_in_truncation(datasets):
    root, _ = datasets
    ep = next(GameDataset(root / "minatar-asterix").episodes())
    cut = cut_episode(ep, 3)
    assert len(cut["obs"]) == 4 and cut["is_last"][-1] and not cut["is_terminal"].any()
    assert cut["is_last"].sum() == 1 and ep["is_last"][-1]  # the original is untouched


def test_union_is_balanced_and_batches_mix_games(datasets):
    root, sizes = datasets
    replay, loaded = union_replay([root / "minatar-breakout", root / "minatar-asterix"], seed=0)
    assert loaded == {"minatar-breakout": 400, "minatar-asterix": 400}  # the smaller game's count
    assert sorted(replay.games) == ["minatar-asterix", "minatar-breakout"]
    (batch,) = iterate_batches(replay, batch=64, length=8, count=1)
    assert batch["obs"].shape == (64, 8, 10, 10, 10) and batch["obs"].dtype == np.uint8
    per_game = np.bincount(batch["game"][:, 0], minlength=2)
    assert per_game.min() >= 16, per_game  # both games in one batch, drawn ~uniformly
    with pytest.raises(ValueError, match="smaller"):
        union_replay([root / "minatar-breakout", root / "minatar-asterix"], steps_per_game=500)
    with pytest.raises(ValueError, match="twice"):
        union_replay([root / "minatar-breakout", root / "minatar-breakout"])
