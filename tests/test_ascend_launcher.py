"""The model zoo's Ascend launcher (centerdet.engine.launcher): the bash file it writes from a rank
table and an .ini starts the right processes with the right environment, flags and log folders. No
Ascend here: the ranks run a stand-in interpreter that records what it was given."""
import json
import os
import shlex
import subprocess
import sys

import pytest

from centerdet.cli import parse_overrides
from centerdet.config import load_config
from centerdet.engine import launcher

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
INI = os.path.join(ROOT, "scripts", "ascend_distributed_launcher", "hyper_parameter_config.ini")


def _table(path, servers):
    table = {"version": "1.0", "server_count": str(len(servers)), "status": "completed", "server_list": [
        {"server_id": sid, "host_nic_ip": "reserve", "device": [
            {"device_id": str(d), "device_ip": f"192.98.{i}.{d}", "rank_id": str(r)} for d, r in devices]}
        for i, (sid, devices) in enumerate(servers)]}
    path.write_text(json.dumps(table))
    return str(path)


@pytest.fixture
def stand_in(tmp_path):
    """An 'interpreter' that prints its environment and arguments, and fails for device 6."""
    path = tmp_path / "fake_python"
    path.write_text('#!/bin/bash\necho "DEVICE_ID=$DEVICE_ID RANK_ID=$RANK_ID RANK_SIZE=$RANK_SIZE '
                    'GLOG_log_dir=$GLOG_log_dir RANK_TABLE_FILE=$RANK_TABLE_FILE"\nprintf "%s\\n" "$@"\n'
                    '[ "$DEVICE_ID" != 6 ]\n')
    path.chmod(0o755)
    return str(path)


def test_the_generated_file_starts_one_rank_per_local_device(tmp_path, stand_in, monkeypatch):
    monkeypatch.chdir(tmp_path)
    table = _table(tmp_path / "hccl.json", [("10.0.0.1", [(0, 0), (1, 1)]), ("10.0.0.2", [(4, 2), (5, 3)])])
    assert launcher.main(["--hccl_config_dir", table, "--hyper_parameter_config_dir", INI, "--server_id",
                          "10.0.0.2", "--mindrecord_dir", "/data/mr", "--run_script_dir", os.path.join(ROOT, "train.py"),
                          "--python", stand_in, "--task_set_core", "2", "--", "--device_target", "CPU",
                          "--enable_data_sink", "false"]) == 0
    text = (tmp_path / "distributed_cmd.sh").read_text()
    assert subprocess.run(["bash", "-n", "distributed_cmd.sh"]).returncode == 0
    launches = [line for line in text.splitlines() if "train.py" in line and "taskset" in line]
    assert ["taskset -c 0-0" in launches[0], "taskset -c 1-1" in launches[1]] == [True, True]
    # what train.py is given parses into the CenterNet config with the .ini's values, extra flags winning
    words = shlex.split(launches[1].split(" > ")[0])
    values, _ = parse_overrides(words[words.index(os.path.join(ROOT, "train.py")) + 1:])
    cfg = load_config(os.path.join(ROOT, "default_config.yaml"), values)
    assert (cfg.device_id, cfg.device_num, cfg.distribute, cfg.epoch_size, cfg.save_checkpoint_num) == (5, 4, True,
                                                                                                          350, 1)
    assert cfg.enable_data_sink is False and cfg.mindrecord_dir == "/data/mr" and cfg.device_target == "CPU"
    assert cfg.save_checkpoint_path == str(tmp_path / "LOG4" / "ckpt_0")   # rank 2 (the first here) saves

    proc = subprocess.run(["bash", "distributed_cmd.sh"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    for device, rank in ((4, 2), (5, 3)):
        log = (tmp_path / f"LOG{device}" / "training_log.txt").read_text().splitlines()
        assert log[0] == (f"DEVICE_ID={device} RANK_ID={rank} RANK_SIZE=4 GLOG_log_dir={tmp_path}/LOG{device}/ms_log "
                          f"RANK_TABLE_FILE={table}")
        assert f"--device_id={device}" in log and (tmp_path / f"LOG{device}" / "ms_log").is_dir()


def test_a_failing_rank_fails_the_launch(tmp_path, stand_in, monkeypatch):
    monkeypatch.chdir(tmp_path)
    table = _table(tmp_path / "hccl.json", [("10.0.0.1", [(6, 0), (7, 1)])])
    launcher.main(["--hccl_config_dir", table, "--python", stand_in, "--task_set", "0",
                   "--run_script_dir", os.path.join(ROOT, "train.py")])
    text = (tmp_path / "distributed_cmd.sh").read_text()
    assert "taskset" not in text and "--save_checkpoint_path=" + str(tmp_path / "LOG6" / "ckpt_0") in text
    assert subprocess.run(["bash", "distributed_cmd.sh"], capture_output=True).returncode == 1
    assert (tmp_path / "LOG7" / "training_log.txt").exists()


def test_core_shares():
    assert launcher.core_ranges(192, 2) == ["0-95", "96-191"]
    assert launcher.core_ranges(2, 4) == ["0-0", "1-1", "0-0", "1-1"]   # more ranks than cores: shared


@pytest.mark.parametrize("ini, servers, extra, message", [
    ("[config]\ndevice_num=8\n", [("a", [(0, 0)])], [], "'device_num' is set per rank by the launcher"),
    ("[config]\nepoch_sise=3\n", [("a", [(0, 0)])], [], "epoch_sise"),
    ("epoch_size=3\n", [("a", [(0, 0)])], [], "not an .ini file"),
    ("[other]\n", [("a", [(0, 0)])], [], "no [config] section"),
    ("[config]\n", [("a", [(0, 0)]), ("b", [(1, 1)])], [], "lists 2 servers and none is this machine"),
    ("[config]\n", [("a", [(0, 0)])], ["--server_id", "z"], "--server_id z is not in"),
    ("[config]\n", [("a", [(0, 0)])], ["--task_set_core", "4096"], "--task_set_core 4096: this machine gives"),
])
def test_bad_launch_input_is_one_line_and_writes_nothing(tmp_path, monkeypatch, capsys, ini, servers, extra,
                                                         message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "h.ini").write_text(ini)
    table = _table(tmp_path / "hccl.json", servers)
    with pytest.raises(SystemExit) as exit_info:
        launcher.main(["--hccl_config_dir", table, "--hyper_parameter_config_dir", "h.ini", *extra,
                       "--run_script_dir", os.path.join(ROOT, "train.py")])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "distributed_cmd.sh").exists()


def test_the_zoo_scripts_name_runs_the_launcher(tmp_path):
    table = _table(tmp_path / "hccl.json", [("a", [(0, 0)])])
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "ascend_distributed_launcher",
                                                        "get_distribute_train_cmd.py"),
                           f"--run_script_dir={ROOT}/train.py", f"--hyper_parameter_config_dir={INI}",
                           "--mindrecord_dir=/data/mr", f"--hccl_config_dir={table}", "--cmd_file=cmd.sh"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "--epoch_size=350" in (tmp_path / "cmd.sh").read_text()
