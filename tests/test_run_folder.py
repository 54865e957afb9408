"""RunFolder: staging, config check on resume, metrics cut back, promotion; schedules and progress lines."""

import io

import pandas as pd
import pytest

from wmtransfer.train.run import ConfigChanged, Every, Progress, RunFolder


def test_resume_cuts_metrics_back_and_carries_wall_time(tmp_path):
    run = RunFolder(tmp_path, {"agent": {"env_steps": 100, "lr": 1e-3}})
    assert run.resume() is None
    m = run.metrics()
    for step in (10, 20):
        m.write(step, step, run.wall(), {"wm_loss": 1.0})
    run.save({"loop": {"env_step": 20}})
    m.write(30, 30, run.wall(), {"wm_loss": 2.0})  # after the checkpoint: lost by a kill, cut on resume
    m.close()
    assert not (tmp_path / "metrics.csv").exists()  # nothing declared appears before the end

    again = RunFolder(tmp_path, {"agent": {"env_steps": 200, "lr": 1e-3}})  # a budget may grow
    saved = again.resume()
    assert saved["loop"] == {"env_step": 20} and saved["metrics_rows"] == 2
    m = again.metrics()
    assert list(pd.read_csv(tmp_path / "partial" / "metrics.csv")["env_step"]) == [10, 20]
    assert again.wall() >= saved["wall_time"]
    m.write(30, 30, again.wall(), {"wm_loss": 3.0})
    summary = again.finish({"env_steps": 30}, {"agent.pt": lambda p: p.write_text("weights")})
    assert list(pd.read_csv(tmp_path / "metrics.csv")["wm_loss"]) == [1.0, 1.0, 3.0]
    assert (tmp_path / "agent.pt").read_text() == "weights" and summary["env_steps"] == 30
    assert (tmp_path / "summary.json").samefile(tmp_path / "partial" / "summary.json")


def test_resume_with_another_config_is_refused_naming_the_key(tmp_path):
    run = RunFolder(tmp_path, {"agent": {"env_steps": 100, "lr": 1e-3}})
    run.resume()
    run.metrics()
    run.save({})
    with pytest.raises(ConfigChanged, match=r"agent.lr: checkpoint 0.001, now 0.01"):
        RunFolder(tmp_path, {"agent": {"env_steps": 100, "lr": 1e-2}}).resume()


def test_a_field_added_since_the_checkpoint_resumes_only_at_its_old_behaviour(tmp_path):
    """A checkpoint written before ``dreamer.post_ent_scale`` existed resumes with the field at 0 (the old
    behaviour) and is refused with the field set to anything else."""
    run = RunFolder(tmp_path, {"dreamer": {"kl_scale": 0.1}})
    run.resume()
    run.metrics()
    run.save({})
    with pytest.raises(ConfigChanged, match=r"dreamer.post_ent_scale: checkpoint 0.0, now 0.01"):
        RunFolder(tmp_path, {"dreamer": {"kl_scale": 0.1, "post_ent_scale": 0.01}}).resume()
    assert RunFolder(tmp_path, {"dreamer": {"kl_scale": 0.1, "post_ent_scale": 0.0}}).resume() is not None


def test_every_and_progress_lines():
    due = Every(50, start=120)
    assert [n for n in range(120, 260, 10) if due.due(n)] == [150, 200, 250]
    out = io.StringIO()  # not a terminal: plain lines, as in a Snakemake job log
    p = Progress(1000, 0, "env steps", "minatar-breakout seed 0", every_s=0.0, stream=out)
    p.update(250, ret=1.5, updates=10)
    p.close()
    lines = out.getvalue().splitlines()
    assert len(lines) == 2 and "minatar-breakout seed 0: 250/1000 env steps (25%)" in lines[0]
    assert "ret 1.5" in lines[0] and "updates 10" in lines[0] and "ETA" in lines[0]
