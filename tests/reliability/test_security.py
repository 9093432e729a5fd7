"""Security: loopback by default and a key for anything else; trust_remote_code off unless
asked; YAML loaded safely; run names cannot leave the runs folder; the code task never
copies a secret; HF_HUB_OFFLINE=1 means no network at all (a socket guard in every
process, the detached worker included); nothing installs packages at run time; files are
written with sane permissions."""

from __future__ import annotations

import ast
import json
import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from sage_ft_tui.engine.config.schema import RunConfig
from sage_ft_tui.engine.errors import SageError
from sage_ft_tui.engine.paths import validate_run_name

from .conftest import CLI, REPO, cli, one_error_line
from .test_server_faults import merged_run, serve, stand_in  # noqa: F401  (fixtures)

SRC = REPO / "sage_ft_tui"
PY_FILES = sorted(SRC.rglob("*.py"))


# ---- serving ------------------------------------------------------------------------


def test_serve_binds_loopback_unless_told_and_a_network_bind_needs_a_key(merged_run, monkeypatch):  # noqa: F811
    from sage_ft_tui.engine.deploy import serve_command as sc
    from sage_ft_tui.engine.deploy.net import is_loopback
    from sage_ft_tui.engine.deploy.serve_command import serve_command

    command = serve_command(merged_run, backend="transformers", port=0)
    assert command.host == "127.0.0.1" and command.cmd[command.cmd.index("--host") + 1] == "127.0.0.1"
    for host in ("0.0.0.0", "::", "192.168.1.10", "example.org"):
        with pytest.raises(SageError, match="without an API key"):
            serve_command(merged_run, backend="transformers", host=host, port=0)
    # vLLM with a key: the key goes through the environment, never the command line (ps shows that)
    monkeypatch.setattr(sc, "find_program", lambda name: "/usr/bin/true")
    monkeypatch.setattr(sc, "gpu_present", lambda: True)
    command = serve_command(merged_run, backend="vllm", mode="merged", host="0.0.0.0", api_key="s3cret-key", port=0)
    assert command.env.get("VLLM_API_KEY") == "s3cret-key" and not any("s3cret-key" in c for c in command.cmd)
    for loop in ("127.0.0.1", "localhost", "::1", "127.0.0.2"):
        assert is_loopback(loop)
    for net in ("0.0.0.0", "::", "10.0.0.1", "example.org"):
        assert not is_loopback(net)


def test_cli_serve_on_the_network_without_a_key_is_refused(stand_in, merged_run):  # noqa: F811
    line = one_error_line(serve(stand_in, "serve", "srv", "--host", "0.0.0.0", "--port", "0"))
    assert "without an API key" in line and "--api-key" in line
    assert stand_in["pids"].read_text() == "" and not (merged_run / "serve.json").exists()


def test_serve_json_with_a_key_is_private_even_under_umask_0(stand_in, merged_run):  # noqa: F811
    old = os.umask(0)
    try:
        p = serve(stand_in, "serve", "srv", "--backend", "transformers", "--port", "0", "--api-key", "k-123", "--json")
    finally:
        os.umask(old)
    try:
        assert p.returncode == 0, p.stderr
        info = json.loads(p.stdout.strip().splitlines()[-1])
        assert info["api_key"] == "set" and "k-123" not in p.stdout + p.stderr  # never printed
        sj = merged_run / "serve.json"
        assert stat.S_IMODE(sj.stat().st_mode) == 0o600 and json.loads(sj.read_text())["api_key"] == "k-123"
    finally:
        serve(stand_in, "serve", "--stop", "srv")


# ---- model loading and config ---------------------------------------------------------


def test_trust_remote_code_is_off_unless_asked():
    assert RunConfig().model.trust_remote_code is False
    hits = []
    for f in PY_FILES:
        tree = ast.parse(f.read_text(), str(f))
        for node in ast.walk(tree):
            if isinstance(node, ast.keyword) and node.arg == "trust_remote_code":
                if isinstance(node.value, ast.Constant) and node.value.value is True:
                    hits.append(f"{f.relative_to(REPO)}:{node.lineno}")
            if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "from_pretrained":
                kws = {k.arg for k in node.keywords}
                if "trust_remote_code" not in kws and None not in kws:
                    pass  # transformers' own default is False
    assert not hits, f"trust_remote_code=True hard-coded at {hits}"


def test_yaml_is_only_ever_loaded_safely():
    bad = re.compile(
        r"yaml\.(load|unsafe_load|full_load|load_all)\s*\(|Loader\s*=\s*yaml\.(Loader|UnsafeLoader|FullLoader)"
    )
    hits = [
        f"{f.relative_to(REPO)}:{i}"
        for f in PY_FILES
        for i, ln in enumerate(f.read_text().splitlines(), 1)
        if bad.search(ln)
    ]
    assert not hits, hits


def test_yaml_tags_never_construct_objects(tmp_path):
    marker = tmp_path / "pwned"
    for doc in (
        f"!!python/object/apply:os.system ['touch {marker}']\n",
        f"name: !!python/object/apply:os.system ['touch {marker}']\n",
        "model: !!python/name:os.system\n",
        "training: !!python/object/new:dict {}\n",
    ):
        p = tmp_path / "c.yaml"
        p.write_text(doc)
        with pytest.raises(SageError):
            RunConfig.load(p)
    assert not marker.exists()


@pytest.mark.parametrize(
    "name",
    [
        "../x",
        "..",
        "a/../../b",
        "/etc",
        "a/b",
        "a\\b",
        ".hidden",
        "-rf",
        "x" * 101,
        "",
        "a\0b",
        "name\n",
        "~root",
        "a..b",
    ],
)
def test_run_names_cannot_escape_the_runs_folder(name, sage_home):
    with pytest.raises(SageError):
        validate_run_name(name)
    with pytest.raises(SageError):
        RunConfig.from_dict({"name": name, "task": "qa", "data": {"paths": ["x"]}})
    try:
        cfg = RunConfig().with_overrides([f"name={name}"])
    except SageError:
        pass
    else:  # --set strips the value: what is left must itself be a valid name
        assert cfg.name == name.strip() and validate_run_name(cfg.name)
    assert not sage_home.exists() or not any(sage_home.iterdir())


# ---- the code task ----------------------------------------------------------------------


def test_code_task_never_copies_a_secret(tmp_path, sage_home, tiny_model):
    sys.path.insert(0, str(REPO / "tests" / "fixtures"))
    try:
        import coderepo_factory as crf
    finally:
        sys.path.pop(0)
    for git in (True, False):
        repo = crf.make_code_repo(tmp_path / f"proj{int(git)}", git=git)
        p = cli(
            "start",
            "--task",
            "code",
            "--model",
            "tiny-demo",
            "--set",
            f"data.repo={repo.root}",
            "--max-steps",
            "1",
            "--max-length",
            "128",
            "--name",
            f"code{int(git)}",
            "--no-tui",
        )
        assert p.returncode == 0, p.stderr
        run = sage_home / f"code{int(git)}"
        files = [(f, f.read_bytes()) for f in run.rglob("*") if f.is_file()]
        assert any(f.name == "train.jsonl" for f, _ in files)
        for s in crf.SECRET_STRINGS:
            hits = [str(f.relative_to(run)) for f, b in files if s.encode() in b]
            assert not hits, f"a planted secret was copied into {hits}"
        for s in crf.SECRET_STRINGS:
            assert s not in p.stdout + p.stderr


# ---- no network with HF_HUB_OFFLINE=1 ------------------------------------------------------

GUARD = r"""
import os, socket
_LOG = os.environ["SAGE_NET_LOG"]
def _note(what):
    with open(_LOG, "a") as fh:
        fh.write(f"{os.getpid()} {what}\n")
def _local(host):
    return host is None or str(host) in ("localhost", "127.0.0.1", "::1", "") or str(host).startswith("127.")
_gai = socket.getaddrinfo
def getaddrinfo(host, *a, **k):
    if not _local(host):
        _note(f"getaddrinfo {host}")
        raise OSError("network blocked by the test")
    return _gai(host, *a, **k)
socket.getaddrinfo = getaddrinfo
_connect = socket.socket.connect
def connect(self, addr):
    if self.family in (socket.AF_INET, socket.AF_INET6) and not _local(addr[0]):
        _note(f"connect {addr}")
        raise OSError("network blocked by the test")
    return _connect(self, addr)
socket.socket.connect = connect
"""


def _cli_without_offline_env(*args, env: dict, timeout: int):
    """The CLI with none of the offline/telemetry variables set by us: the tool must set them."""
    import subprocess

    from sage_ft_tui.engine.offline import OFFLINE, TELEMETRY_OFF

    base = {k: v for k, v in os.environ.items() if k not in {*OFFLINE, *TELEMETRY_OFF}}
    return subprocess.run(
        [sys.executable, "-m", "sage_ft_tui", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**base, **env},
        stdin=subprocess.DEVNULL,
    )


@pytest.mark.train
def test_offline_means_no_network_anywhere_and_a_trained_run_has_sane_permissions(tmp_path, sage_home, tiny_model):
    """A local model and local data, start → run → completed, with no HF_HUB_OFFLINE (or any
    telemetry switch) in the environment: no process of ours (CLI, detached worker) may even
    resolve a host name that is not this machine."""
    guard = tmp_path / "guard"
    guard.mkdir()
    (guard / "sitecustomize.py").write_text(GUARD)
    log = tmp_path / "net.log"
    log.write_text("")
    env = {
        "SAGE_NET_LOG": str(log),
        "PYTHONPATH": os.pathsep.join([str(guard), str(REPO)] + [p for p in sys.path if p]),
    }
    data = REPO / "sage_ft_tui" / "samples" / "instruction_alpaca.jsonl"
    old = os.umask(0o022)
    try:
        p = _cli_without_offline_env(
            "start", "--task", "instruction", "--model", "tiny-demo", "--data", data, "--name", "offline",
            "--max-steps", "2", "--set", "training.save_steps=1", "--set", "training.max_length=64",
            "--no-tui", env=env, timeout=300,
        )  # fmt: skip
        assert p.returncode == 0, p.stderr[-2000:]
        p = _cli_without_offline_env("run", "offline", "--json", "--no-tui", env=env, timeout=300)
    finally:
        os.umask(old)
    assert p.returncode == 0, p.stderr[-2000:]
    assert '"state": "completed"' in p.stdout
    attempts = log.read_text()
    assert attempts == "", f"network attempts with a local model and local data:\n{attempts}"
    for args in (
        ("doctor", "--json"),
        ("list", "--json"),
        ("examples",),
    ):
        r = _cli_without_offline_env(*args, "--no-tui", env=env, timeout=120)
        assert "Traceback" not in r.stderr, r.stderr
    r = cli(
        "start", "--task", "qa", "--model", "some-org/some-model", "--data", REPO / "sage_ft_tui" / "samples" / "qa.jsonl",
        "--no-tui", env={**env, "HF_HUB_OFFLINE": "1"}, timeout=120,
    )  # fmt: skip
    assert "Traceback" not in r.stderr, r.stderr
    assert "HF_HUB_OFFLINE" in r.stderr  # the uncached hub id: a clear offline error, no download attempt
    assert (sage_home).exists()
    attempts = log.read_text()
    assert attempts == "", f"network attempts with HF_HUB_OFFLINE=1:\n{attempts}"
    # The run trained for real (umask 022 here): nothing in the finished run (checkpoints,
    # adapter, config, status, events, log) is group- or world-writable; the folder is 0750.
    run = next(d for d in sage_home.iterdir() if d.is_dir())
    assert _mode(run) == 0o750
    bad = [f"{f.relative_to(run)} {oct(_mode(f))}" for f in run.rglob("*") if not f.is_symlink() and _mode(f) & 0o022]
    assert not bad, bad
    assert any(f.name == "adapter_model.safetensors" for f in (run / "checkpoints").rglob("*"))


# ---- no installs at run time ---------------------------------------------------------------


def test_nothing_installs_packages_at_run_time():
    """No pip/ensurepip/conda/apt call anywhere in the package (hints that *tell* the user
    to pip install are fine: they are strings in messages, never executed)."""
    runners = {
        "run",
        "call",
        "check_call",
        "check_output",
        "Popen",
        "system",
        "popen",
        "spawnv",
        "spawnl",
        "execv",
        "execvp",
        "execl",
        "run_module",
        "main",
    }
    hits = []
    for f in PY_FILES:
        tree = ast.parse(f.read_text(), str(f))
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [a.name for a in node.names] + [getattr(node, "module", None) or ""]
                if any(n.split(".")[0] in ("pip", "ensurepip", "setuptools", "conda") for n in names):
                    hits.append(f"{f.relative_to(REPO)}:{node.lineno} imports an installer")
            if isinstance(node, ast.Call):
                fn = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
                if fn not in runners:
                    continue
                text = ast.unparse(node)
                if re.search(r"['\"](pip3?|ensurepip|conda|apt(-get)?|uv)['\"]|pip install|-m['\"],\s*['\"]pip", text):
                    hits.append(f"{f.relative_to(REPO)}:{node.lineno} {text[:120]}")
    assert not hits, hits


# ---- permissions ------------------------------------------------------------------------------


def _mode(p: Path) -> int:
    return stat.S_IMODE(p.stat().st_mode)


def test_run_files_are_not_world_writable_even_under_umask_0(sage_home, tiny_model, sample_data):
    p = subprocess.run(
        CLI
        + [
            "start",
            "--task",
            "qa",
            "--model",
            "tiny-demo",
            "--data",
            str(sample_data["qa"]),
            "--name",
            "perm",
            "--no-tui",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=lambda: os.umask(0),
    )
    assert p.returncode == 0, p.stderr
    run = sage_home / "perm"
    assert _mode(run) == 0o750
    for name in ("config.yaml", "status.json", "data/data_report.json"):
        assert _mode(run / name) & 0o022 == 0, (name, oct(_mode(run / name)))
