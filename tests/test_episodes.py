"""Episode files: format, deterministic checksums, and errors that name the defective file."""

from __future__ import annotations

import numpy as np
import pytest

from wmtransfer.data.episodes import (
    EpisodeError,
    episode_policies,
    file_sha256,
    manifest_row,
    read_episode,
    read_manifest,
    write_episode,
    write_manifest,
)


def make_episode(length: int = 5, terminal: bool = True, seed: int = 0) -> dict:
    """An episode of ``length`` transitions in the documented format."""
    rng = np.random.default_rng(seed)
    n = length + 1
    first = np.zeros(n, bool)
    first[0] = True
    last = np.zeros(n, bool)
    last[-1] = True
    half = length // 2
    policy = np.r_[-1, np.zeros(half), np.ones(length - half)].astype(np.int16)
    action = rng.integers(0, 6, n).astype(np.int16)
    action[0] = 0
    reward = rng.integers(0, 2, n).astype(np.float32)
    reward[0] = 0
    return {"obs": rng.integers(0, 2, (n, 10, 10, 10), dtype=np.uint8), "action": action, "reward": reward,
            "is_first": first, "is_last": last, "is_terminal": last & terminal, "policy": policy,
            "policy_names": np.array(["random", "dqn@100"]), "game": np.array("minatar-breakout")}


def test_round_trip_and_deterministic_checksum(tmp_path):
    ep = make_episode()
    sha_a = write_episode(tmp_path / "a.npz", ep)
    sha_b = write_episode(tmp_path / "b.npz", ep)
    assert sha_a == sha_b == file_sha256(tmp_path / "a.npz")  # same data, same bytes
    back = read_episode(tmp_path / "a.npz")
    for key in ep:
        np.testing.assert_array_equal(back[key], ep[key])
        assert back[key].dtype == np.asarray(ep[key]).dtype or key in ("policy_names", "game")
    assert str(back["game"]) == "minatar-breakout"
    assert write_episode(tmp_path / "c.npz", make_episode(seed=1)) != sha_a


def test_missing_key_is_named(tmp_path):
    ep = make_episode()
    ep.pop("is_terminal")
    with pytest.raises(EpisodeError, match=r"x\.npz: missing key\(s\) is_terminal"):
        write_episode(tmp_path / "x.npz", ep)
    full = make_episode()
    np.savez_compressed(tmp_path / "y.npz", **{k: v for k, v in full.items() if k != "reward"})
    with pytest.raises(EpisodeError, match=r"y\.npz: missing key\(s\) reward"):
        read_episode(tmp_path / "y.npz")


def test_truncated_and_corrupt_files_are_named(tmp_path):
    path = tmp_path / "ep.npz"
    write_episode(path, make_episode(50))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(EpisodeError, match=r"ep\.npz: unreadable"):
        read_episode(path)
    path.write_bytes(b"\x00" * 100)
    with pytest.raises(EpisodeError, match=r"ep\.npz"):
        read_episode(path)
    with pytest.raises(EpisodeError, match=r"nothere\.npz: episode file does not exist"):
        read_episode(tmp_path / "nothere.npz")


@pytest.mark.parametrize("breakage, message", [
    (lambda ep: ep["is_first"].__setitem__(2, True), "is_first"),
    (lambda ep: ep["is_last"].__setitem__(-1, False), "is_last"),
    (lambda ep: ep["is_terminal"].__setitem__(1, True), "is_terminal"),
    (lambda ep: ep["policy"].__setitem__(3, 7), "policy"),
    (lambda ep: ep.__setitem__("action", ep["action"].astype(np.int64)), "action has dtype int64"),
    (lambda ep: ep.__setitem__("reward", ep["reward"][:-1]), "reward has shape"),
])
def test_format_violations_are_refused(tmp_path, breakage, message):
    ep = make_episode()
    breakage(ep)
    with pytest.raises(EpisodeError, match=message):
        write_episode(tmp_path / "bad.npz", ep)


def test_manifest_round_trip(tmp_path):
    ep = make_episode(6)
    sha = write_episode(tmp_path / "episodes" / "ep000000.npz", ep)
    row = manifest_row("episodes/ep000000.npz", ep, sha)
    assert row["length"] == 6 and row["return"] == float(ep["reward"].sum())
    assert row["policies"] == "random;dqn@100" and episode_policies(ep) == ["random", "dqn@100"]
    write_manifest(tmp_path / "manifest.csv", [row])
    (back,) = read_manifest(tmp_path / "manifest.csv")
    assert back["sha256"] == sha and back["file"] == "episodes/ep000000.npz" and int(back["length"]) == 6
    (tmp_path / "broken.csv").write_text("file,game\nx,y\n")
    with pytest.raises(EpisodeError, match="broken.csv: manifest lacks column"):
        read_manifest(tmp_path / "broken.csv")
