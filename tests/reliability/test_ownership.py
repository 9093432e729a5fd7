"""Nothing a user owns is ever touched: the data-loss corpus (corpus/ownership.py) through
the real CLI, each case in its own world, the whole world hashed before and after.

Also: derived run names are sanitised, permission problems and ports that may not be bound
are one line naming what and why."""

from __future__ import annotations

import os
import shutil
import socket
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from .conftest import SAMPLES, cli, one_error_line
from .corpus.ownership import CASES, OwnCase, expand, make_world, world_digest


def _run_case(case: OwnCase, base: Path) -> dict:
    w = base / case.id
    home = make_world(w)
    before = world_digest(w)
    p = cli(
        *expand(case.args, w, home),
        "--no-tui",
        env={"SAGE_FT_HOME": str(home), "COLUMNS": "200"},
        timeout=240,
        cwd=w / "cwd",
    )
    return {"p": p, "before": before, "after": world_digest(w)}


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> dict:
    base = tmp_path_factory.mktemp("ownership")
    with ThreadPoolExecutor(max_workers=4) as pool:
        futs = {c.id: pool.submit(_run_case, c, base) for c in CASES}
        return {k: f.result() for k, f in futs.items()}


def test_the_data_loss_corpus_covers_every_destructive_command():
    assert len({c.id for c in CASES}) == len(CASES) >= 30
    commands = {c.args[0] for c in CASES}
    assert {"clean", "merge", "run", "resume", "serve", "cancel", "list"} <= commands


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_not_ours_is_never_touched(case: OwnCase, results):
    r = results[case.id]
    p = r["p"]
    if case.ok:
        assert p.returncode == 0 and "Traceback" not in p.stderr, p.stderr[-2000:]
        for words in case.expect:
            assert words in p.stdout, f"{words!r} not in: {p.stdout[-2000:]}"
    else:
        line = one_error_line(p)
        for words in case.expect:
            assert words in line, f"{words!r} not in: {line}"
        assert " — " in line, f"no 'what to do' part: {line}"
    assert r["after"] == r["before"], "a byte changed in a folder that is not ours"


# ---- names, permissions, ports ---------------------------------------------------------------


def test_a_model_folder_name_becomes_a_valid_run_name(tmp_path, sage_home, tiny_model):
    model = tmp_path / "My Model (v2)"
    shutil.copytree(tiny_model, model)
    p = cli("start", "--task", "qa", "--model", model, "--data", SAMPLES / "qa.jsonl", "--no-tui")
    assert p.returncode == 0, p.stderr[-2000:]
    (run,) = [d for d in sage_home.iterdir()]
    assert run.name.startswith("qa-my-model-v2-"), run.name


def _no_privileges() -> list[str]:
    """A command prefix under which file permissions and privileged ports apply (root drops
    the capabilities that bypass them); skips when that cannot be arranged."""
    if os.geteuid() != 0:
        return []
    if not shutil.which("setpriv"):
        pytest.skip("running as root without setpriv: permissions cannot be enforced for the test")
    caps = "-dac_override,-dac_read_search,-fowner,-net_bind_service"
    return ["setpriv", f"--bounding-set={caps}", f"--inh-caps={caps}"]


def _cli_as_user(*args, env: dict, prefix: list[str], timeout: int = 240):
    import subprocess

    return subprocess.run(
        [*prefix, sys.executable, "-m", "sage_ft_tui", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **env},
        stdin=subprocess.DEVNULL,
    )


def test_permission_problems_are_one_line_naming_the_path(tmp_path, tiny_model):
    prefix = _no_privileges()
    locked = tmp_path / "locked"
    locked.mkdir()
    _our = tmp_path / "cache"
    shutil.copytree(tiny_model, _our / tiny_model.name)
    data = SAMPLES / "qa.jsonl"
    start = ["start", "--task", "qa", "--model", "tiny-demo", "--data", data, "--no-tui"]
    cases = [
        (["list", "--no-tui"], {"SAGE_FT_HOME": str(locked)}, str(locked)),
        (start, {"SAGE_FT_HOME": str(locked / "runs"), "SAGE_FT_CACHE": str(_our)}, str(locked / "runs")),
        (["clean", "x", "--yes", "--no-tui"], {"SAGE_FT_HOME": str(locked)}, str(locked)),
        (start, {"SAGE_FT_HOME": str(tmp_path / "h"), "SAGE_FT_CACHE": str(locked / "c")}, str(locked / "c")),
        (["demo", "--max-steps", "1", "--no-tui"], {"SAGE_FT_HOME": str(locked)}, str(locked)),
        (["quickstart", "qa", "--data", data, "--model", "tiny-demo", "--no-tui"],
         {"SAGE_FT_HOME": str(locked)}, str(locked)),
    ]  # fmt: skip
    locked.chmod(0)
    try:
        for args, env, path in cases:
            line = one_error_line(_cli_as_user(*args, env=env, prefix=prefix))
            assert "permission denied" in line and path in line, (args, line)
    finally:
        locked.chmod(0o755)


def test_a_port_that_may_not_be_bound_is_not_called_in_use(sage_home):
    from sage_ft_tui.engine.config.schema import RunConfig
    from sage_ft_tui.engine.runs.create import create_run

    prefix = _no_privileges()
    create_run(RunConfig.from_dict({"name": "p", "task": "qa", "data": {"paths": ["x"]}}), prepare=False)
    env = {"SAGE_FT_HOME": str(sage_home)}
    p = _cli_as_user("serve", "p", "--port", "80", "--backend", "transformers", "--no-tui", env=env, prefix=prefix)
    line = one_error_line(p)
    assert "may not be bound" in line and "already in use" not in line and "1024" in line
    from sage_ft_tui.engine.deploy.net import port_problem

    assert "not an address of this machine" in port_problem("192.0.2.7", 8000)[0]  # TEST-NET: never local
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        line = one_error_line(cli("serve", "p", "--port", port, "--backend", "transformers", "--no-tui"))
    assert f"port {port} on 127.0.0.1 is already in use" in line
