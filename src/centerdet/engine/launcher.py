"""The model zoo's Ascend distributed launcher: write a bash file that starts one training process per
device of this server in an HCCL rank table, with its flags from a ``.ini`` file.

``python -m centerdet.engine.launcher --hccl_config_dir RANK_TABLE --hyper_parameter_config_dir INI
--mindrecord_dir DIR [--run_script_dir train.py] [--cmd_file distributed_cmd.sh] [-- --key value ...]``
(``scripts/ascend_distributed_launcher/get_distribute_train_cmd.py`` is the zoo's name for it).
Each rank gets ``DEVICE_ID``/``RANK_ID``/``RANK_SIZE``/``RANK_TABLE_FILE``, MindSpore's own logs in
``<LOG><device>/ms_log``, its output in ``<LOG><device>/training_log.txt``, and, with ``--task_set``,
an equal share of the CPU cores (``taskset``). Checkpoints go where the flags say, else to rank 0's
``<LOG><device>/ckpt_0``, as in the zoo. The generated file waits for every rank and fails if one does.
"""
import argparse
import configparser
import json
import os
import shlex
import socket
import sys
from typing import Dict, List, Optional, Sequence

from centerdet.errors import CenterDetError, cli_main

# the launcher sets these per rank; the zoo's launcher refuses them in the .ini too
RANK_KEYS = ("device_id", "device_num", "mindrecord_dir")


def read_hyper_parameters(path: str) -> Dict[str, str]:
    """The ``[config]`` section of the zoo's hyper_parameter_config.ini, as flag: text."""
    if not os.path.isfile(path):
        raise CenterDetError(f"hyper parameter file not found: {path}; pass --hyper_parameter_config_dir")
    parser = configparser.ConfigParser()
    try:
        parser.read(path, encoding="utf-8")
    except configparser.Error as exc:
        raise CenterDetError(f"{path}: not an .ini file ({str(exc).splitlines()[0]})") from None
    if not parser.has_section("config"):
        raise CenterDetError(f"{path}: no [config] section; put the training flags under [config]")
    values = {k: v.strip().strip('"').strip("'") for k, v in parser.items("config")}
    bad = [k for k in values if k in RANK_KEYS]
    if bad:
        raise CenterDetError(f"{path}: '{bad[0]}' is set per rank by the launcher; remove it from [config]")
    return values


def _local_addresses() -> set:
    names = {socket.gethostname(), socket.getfqdn()}
    found = set(names)
    for name in names:
        try:
            found.update(info[4][0] for info in socket.getaddrinfo(name, None))
        except OSError:
            pass
    return found


def _hccn_device_ips(path: str = "/etc/hccn.conf") -> set:
    """Device ips of this server's Ascend cards (address_<i>=<ip> lines of the HCCN tool's file)."""
    if not os.path.isfile(path):
        return set()
    with open(path, encoding="utf-8") as f:
        return {line.split("=", 1)[1].strip() for line in f if line.strip().startswith("address_") and "=" in line}


def read_rank_table(path: str, server_id: str = "") -> Dict:
    """{'rank_size': all ranks, 'devices': [(device_id, rank_id), ...] of this server}."""
    try:
        with open(path, encoding="utf-8") as f:
            table = json.load(f)
        servers = table["server_list"]
        rank_size = sum(len(s["device"]) for s in servers)
        devices = {s.get("server_id", ""): [(int(d["device_id"]), int(d["rank_id"])) for d in s["device"]]
                   for s in servers}
    except FileNotFoundError:
        raise CenterDetError(f"rank table not found: {path}; pass --hccl_config_dir (hccl_tools.py writes one)") \
            from None
    except (ValueError, KeyError, TypeError) as exc:
        raise CenterDetError(f"{path}: not an HCCL rank table (server_list[].device[].device_id/rank_id): "
                             f"{type(exc).__name__} {exc}") from None
    if not devices or rank_size == 0:
        raise CenterDetError(f"{path}: the rank table lists no devices")
    if server_id:
        if server_id not in devices:
            raise CenterDetError(f"--server_id {server_id} is not in {path} (it has {', '.join(devices)})")
        return {"rank_size": rank_size, "devices": devices[server_id]}
    if len(devices) == 1:
        return {"rank_size": rank_size, "devices": next(iter(devices.values()))}
    ips, here = _hccn_device_ips(), _local_addresses()
    for s in servers:
        if s.get("server_id") in here or any(d.get("device_ip") in ips for d in s["device"]):
            return {"rank_size": rank_size, "devices": devices[s.get("server_id", "")]}
    raise CenterDetError(f"{path} lists {len(devices)} servers and none is this machine; pass --server_id "
                         f"(one of {', '.join(devices)})")


def core_ranges(cores: int, ranks: int) -> List[str]:
    """``taskset -c`` ranges: an equal share of ``cores`` per rank, in order."""
    share = max(1, cores // ranks)
    return [f"{(i * share) % cores}-{(i * share) % cores + share - 1}" for i in range(ranks)]


def rank_flags(hyper: Dict[str, str], extra: Sequence[str], mindrecord_dir: str,
               load_checkpoint_path: str) -> List[str]:
    """The flags every rank shares: the .ini's, the data, then ``extra`` (which win)."""
    flags = [f"--{k}={v}" for k, v in hyper.items()]
    flags += [f"--mindrecord_dir={mindrecord_dir}", f"--load_checkpoint_path={load_checkpoint_path}"]
    return flags + list(extra)


def _check_flags(flags: Sequence[str], ranks: int, run_script: str):
    """(config of the flags, config without them): resolved here, as train.py will, so a bad key
    fails before any process starts."""
    from centerdet.cli import parse_overrides
    from centerdet.config import load_config

    values, config = parse_overrides(flags)
    values.update(distribute="true", device_num=str(ranks), device_id="0")
    beside = os.path.join(os.path.dirname(os.path.abspath(run_script)), "default_config.yaml")
    config = config or (beside if os.path.isfile(beside) else None)
    return load_config(config, values), load_config(config, {})


def write_cmd_file(args: argparse.Namespace, extra: Sequence[str]) -> str:
    """The bash text of the launch; also written to ``args.cmd_file``."""
    table = read_rank_table(args.hccl_config_dir, args.server_id)
    hyper = read_hyper_parameters(args.hyper_parameter_config_dir) if args.hyper_parameter_config_dir else {}
    flags = rank_flags(hyper, extra, args.mindrecord_dir, args.load_checkpoint_path)
    devices, rank_size = table["devices"], table["rank_size"]
    cfg, defaults = _check_flags(flags, rank_size, args.run_script_dir)
    cwd = os.getcwd()
    log_dirs = {d: os.path.join(cwd, f"{args.log_dir_prefix}{d}") for d, _ in devices}
    if cfg.save_checkpoint_path == defaults.save_checkpoint_path:
        first = min(devices, key=lambda dr: dr[1])[0]
        flags.append(f"--save_checkpoint_path={os.path.join(log_dirs[first], 'ckpt_0')}")
    here = len(os.sched_getaffinity(0))
    if args.task_set_core > here:
        raise CenterDetError(f"--task_set_core {args.task_set_core}: this machine gives this process {here} cores; "
                             f"pass at most {here} (0: all)")
    cores = core_ranges(args.task_set_core or here, len(devices)) if args.task_set else None
    q = shlex.quote
    lines = ["#!/bin/bash", f"# written by centerdet.engine.launcher from {args.hccl_config_dir}"
             + (f" and {args.hyper_parameter_config_dir}" if hyper else ""),
             f"export RANK_TABLE_FILE={q(os.path.abspath(args.hccl_config_dir))}",
             f"export RANK_SIZE={rank_size}", f"export HCCL_CONNECT_TIMEOUT={args.hccl_time_out}", "PIDS=()"]
    for i, (device, rank) in enumerate(devices):
        log_dir = log_dirs[device]
        env = (f"DEVICE_ID={device} RANK_ID={rank} GLOG_log_dir={q(os.path.join(log_dir, 'ms_log'))} "
               "GLOG_logtostderr=0")
        pin = f"taskset -c {cores[i]} " if cores else ""
        command = [args.python, args.run_script_dir, *flags, "--distribute=true", f"--device_num={rank_size}",
                   f"--device_id={device}"]
        lines += ["", f"echo {q(f'start training for rank {rank}, device {device}: log {log_dir}/training_log.txt')}",
                  f"mkdir -p {q(os.path.join(log_dir, 'ms_log'))}",
                  f"{env} {pin}{' '.join(map(q, command))} > {q(os.path.join(log_dir, 'training_log.txt'))} 2>&1 &",
                  'PIDS+=("$!")']
    lines += ["", "STATUS=0", 'for pid in "${PIDS[@]}"; do wait "$pid" || STATUS=1; done', 'exit "$STATUS"', ""]
    text = "\n".join(lines)
    try:
        with open(args.cmd_file, "w", encoding="utf-8") as f:
            f.write(text)
    except OSError as exc:
        raise CenterDetError(f"--cmd_file {args.cmd_file}: cannot write it ({exc.strerror}); pick a writable path") \
            from None
    return text


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m centerdet.engine.launcher", description=__doc__.splitlines()[0])
    p.add_argument("--hccl_config_dir", required=True, help="HCCL rank table (json)")
    p.add_argument("--hyper_parameter_config_dir", default="", help="the .ini with a [config] section of flags")
    p.add_argument("--mindrecord_dir", default="", help="MindRecord folder of the training data")
    p.add_argument("--load_checkpoint_path", default="", help="weights to start from")
    p.add_argument("--run_script_dir", default=os.path.abspath("train.py"), help="the training script")
    p.add_argument("--cmd_file", default="distributed_cmd.sh", help="where the bash launch file goes")
    p.add_argument("--hccl_time_out", type=int, default=120, help="HCCL_CONNECT_TIMEOUT, seconds")
    p.add_argument("--server_id", default="", help="this server in a multi-server rank table")
    p.add_argument("--log_dir_prefix", default="LOG", help="per-device folders are <prefix><device_id>")
    p.add_argument("--python", default=sys.executable, help="the interpreter each rank runs")
    p.add_argument("--task_set", type=int, choices=(0, 1), default=1, help="1: pin each rank to its own cores")
    p.add_argument("--task_set_core", type=int, default=0, help="cores to share out (0: all of this machine)")
    return p


@cli_main
def main(argv: Optional[List[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    extra = []
    if "--" in argv:
        cut = argv.index("--")
        argv, extra = argv[:cut], argv[cut + 1:]
    args = build_parser().parse_args(argv)
    text = write_cmd_file(args, extra)
    print(f"{args.cmd_file}: {text.count('PIDS+=')} rank(s) on this server; run it with: bash {args.cmd_file}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
