"""RunFolder: staging, config check on resume, metrics cut back, promotion; schedules and progress lines."""

import io
import subprocess
import sys

import pandas as pd
import pytest

from wmtransfer.train.run import ConfigChanged, Every, Progress, RunFolder, RunFolderBusy


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


HOLDER = """
import sys
from wmtransfer.train.run import RunFolder
run = RunFolder(sys.argv[1], {"agent": {"env_steps": 100}})
run.resume()
if sys.argv[2] == "finish":
    run.metrics()
    run.finish({"env_steps": 100})
print("ready", flush=True)
sys.stdin.read()  # hold on until the test closes stdin or kills this process
"""


def _holder(out, mode):
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(out), mode], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"
    return proc


def test_a_folder_is_locked_by_its_running_process_and_freed_by_a_kill(tmp_path):
    holder = _holder(tmp_path, "hold")
    try:
        with pytest.raises(RunFolderBusy, match=rf"pid {holder.pid} on .*Let that run finish"):
            RunFolder(tmp_path, {"agent": {"env_steps": 200}}).resume()
        assert '"env_steps": 100' in (tmp_path / "partial" / "config.json").read_text()  # nothing written
    finally:
        holder.kill()  # SIGKILL: no clean-up runs, the kernel drops the lock
        holder.wait()
    run = RunFolder(tmp_path, {"agent": {"env_steps": 200}})
    assert run.resume() is None
    assert RunFolder(tmp_path, {"agent": {"env_steps": 200}}).resume() is None  # re-entrant in one process


def test_a_finished_run_frees_its_folder_while_its_process_lives_on(tmp_path):
    holder = _holder(tmp_path, "finish")
    try:
        assert RunFolder(tmp_path, {"agent": {"env_steps": 100}}).resume() is None
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)


def test_the_dqn_cli_reports_a_busy_folder_as_an_error_and_trains_nothing(tmp_path):
    holder = _holder(tmp_path, "hold")
    try:
        command = [sys.executable, "-m", "wmtransfer.cli", "train-dqn", "--game", "minatar-breakout",
                   "--out", str(tmp_path), "--threads", "1"]
        done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    finally:
        holder.kill()
        holder.wait()
    assert done.returncode == 2, done.stderr
    assert f"wmtransfer train-dqn: {tmp_path} is being trained into by another process (pid {holder.pid}" \
        in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "ckpt").exists()
