"""README.md's shell blocks tagged ``<!-- readme-test -->``, run as written, one command at a time, in a
copy of the repository after a shrunk stand-in for command 1 (the demo on 320 training images for 2
steps, its checkpoint under the name the full demo leaves). Each command must exit 0 without a
traceback, and the copy's ``git status --porcelain`` must stay empty: every output lands in a folder
git ignores. Commands 1 and 2 themselves are covered by tests/test_install.py and CI."""
import os
import shutil
import subprocess
import sys

import pytest

from conftest import ROOT

TAG = "<!-- readme-test -->"
DEMO_CHECKPOINT = "centernet-16_992.ckpt"  # what command 1 leaves (1000 images, batch 16, 16 epochs)


def tagged_blocks(text):
    """[(line number, [commands])] of the bash blocks right after a TAG line."""
    lines, blocks = text.splitlines(), []
    for i, line in enumerate(lines):
        if line.strip() != TAG:
            continue
        assert lines[i + 1].startswith("```bash"), f"README.md:{i + 1}: {TAG} must precede a ```bash block"
        end = next(j for j in range(i + 2, len(lines)) if lines[j].startswith("```"))
        commands = [c for c in lines[i + 2:end] if c.strip() and not c.lstrip().startswith("#")]
        blocks.append((i + 2, commands))
    return blocks


def test_the_tagged_blocks_are_the_runnable_ones():
    blocks = tagged_blocks(open(os.path.join(ROOT, "README.md"), encoding="utf-8").read())
    assert len(blocks) >= 7 and all(commands for _, commands in blocks)
    text = "\n".join(c for _, commands in blocks for c in commands)
    for needed in ("run_standalone_train.sh", "eval.py", "run_distributed_train_cpu.sh", "test.sh", "eval_all.sh",
                   "export.py", "preprocess.py", "deploy.infer", "postprocess.py", "centerdet config",
                   "centerdet.detect"):
        assert needed in text


def _git(repo, *args):
    return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=repo, check=True,
                          capture_output=True, text=True).stdout


@pytest.fixture(scope="module")
def repo_copy(tmp_path_factory):
    """The tracked files as they are in the working tree, committed in a new repository, with the
    running interpreter's environment as its .venv and command 1's outputs (shrunk) in place."""
    if shutil.which("git") is None or not os.path.isdir(os.path.join(ROOT, ".git")):
        pytest.skip("needs git and a git checkout")
    if sys.prefix == sys.base_prefix:
        pytest.skip("the README's commands run .venv/bin/...; run the tests from a virtual environment")
    repo = tmp_path_factory.mktemp("readme") / "centerdet"
    for rel in _git(ROOT, "ls-files", "-z").split("\0"):
        if rel and os.path.isfile(os.path.join(ROOT, rel)):
            os.makedirs(os.path.dirname(os.path.join(repo, rel)), exist_ok=True)
            shutil.copy2(os.path.join(ROOT, rel), os.path.join(repo, rel))
    os.symlink(sys.prefix, repo / ".venv")
    _git(repo, "init", "-q")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-qm", "copy")
    proc = subprocess.run([".venv/bin/python", "-m", "centerdet.demo", "centernet", "--train", "320", "--val", "8",
                           "--train_steps", "2"], cwd=repo, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    ckpt = repo / "outputs" / "demo_centernet" / "ckpt"
    shutil.copy(ckpt / "centernet-1_2.ckpt", ckpt / DEMO_CHECKPOINT)
    from centerdet import tasks
    tasks.get("centerface").demo.generate(str(repo / "outputs" / "demo_centerface" / "data"), 320, 8, 0)
    return repo


@pytest.mark.slow
def test_readme_shell_blocks_run_as_written_and_leave_git_clean(repo_copy):
    env = {k: v for k, v in os.environ.items() if k not in ("DEVICE_TARGET", "PYTHON")}
    env["MASTER_PORT"] = "8391"  # msrun's scheduler port, apart from the other tests' runs
    blocks = tagged_blocks((repo_copy / "README.md").read_text(encoding="utf-8"))
    for line, commands in blocks:
        for command in commands:
            proc = subprocess.run(["bash", "-c", command], cwd=repo_copy, env=env, capture_output=True, text=True,
                                  timeout=600)
            out = proc.stdout + proc.stderr
            assert proc.returncode == 0 and "Traceback" not in out, \
                f"README.md:{line}: {command}\nexit {proc.returncode}\n{out[-3000:]}"
    assert _git(repo_copy, "status", "--porcelain") == ""
