"""Round two, user code under guard (issue 21, item 4): GRPO reward files.

At `start` every FILE.py:FUNCTION reward is compiled, imported and called on the first
prompt with two completions in a child process; what it gets wrong is one error line
naming the file, the function, the line and the value. During training the same guard
wraps the function TRL calls, so a NaN (or any bad value) that only shows up then stops
the run with that line; and `cancel` ends a run whose reward never returns (SIGKILL of
the group after the wait, said in status.json and train.log). All through the real CLI,
the real worker and TRL's GRPOTrainer on tiny-demo."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from sage_ft_tui.engine.runs.control import cancel
from sage_ft_tui.engine.runs.layout import RunLayout
from sage_ft_tui.engine.runs.state import derive_state, read_status

from .conftest import cli, one_error_line

FIX = Path(__file__).resolve().parents[1] / "fixtures" / "preference" / "grpo_math.jsonl"
QUICK = ["--max-steps", "1", "--max-length", "64", "--set", "grpo.max_completion_length=4"]
QUICK += ["--set", "grpo.num_generations=2", "--set", "training.micro_batch_size=2"]
QUICK += ["--set", "data.validation_split=0", "--set", "training.logging_steps=1"]

# name → (the reward file, the words its one error line must hold)
REWARDS: dict[str, tuple[str, list[str]]] = {
    "syntax": ("def fn(completions, **kw)\n    return [0.0] * len(completions)\n", ["syntax.py:1: syntax error"]),
    "raises": (
        "def fn(completions, answer, **kw):\n    x = 1\n    return [1 / 0 for c in completions]\n",
        ["reward fn", "raises.py:3", "ZeroDivisionError"],
    ),
    "returns_none": ("def fn(completions, **kw):\n    pass\n", ["reward fn", "returns_none.py:1", "returned None"]),
    "wrong_count": ("def fn(completions, **kw):\n    return [1.0]\n", ["returned 1 value for 2 completions"]),
    "strings": (
        "def fn(completions, **kw):\n    return ['good' for c in completions]\n",
        ["returned 'good' (str) for completion 0, not a number"],
    ),
    "sys_exit": ("import sys\n\n\ndef fn(completions, **kw):\n    sys.exit(3)\n", ["sys_exit.py:5", "sys.exit(3)"]),
    "nan": ("def fn(completions, **kw):\n    return [float('nan')] * len(completions)\n", ["returned nan", "finite"]),
    "exit_on_import": (
        "import sys\nsys.exit(2)\n\n\ndef fn(completions, **kw):\n    return [0.0]\n",
        ["exit_on_import.py:2 failed to load", "sys.exit(2)"],
    ),
    "os_exit": (
        "import os\n\n\ndef fn(completions, **kw):\n    print('bye')\n    os._exit(0)\n",
        ["ended with code 0 before answering"],
    ),
}


def _start(t: Path, cid: str, *args: str, data: Path = FIX):
    home = t / "runs" / cid
    p = cli("start", "--task", "grpo", "--data", data, "--model", "tiny-demo", "--no-tui", *args, *QUICK,
            env={"SAGE_FT_HOME": str(home)}, timeout=300)  # fmt: skip
    return p, home


@pytest.fixture(scope="module")
def refused(tmp_path_factory, tiny_model) -> dict:
    t = tmp_path_factory.mktemp("rewards")
    jobs = {}
    for name, (src, _) in REWARDS.items():
        f = t / f"{name}.py"
        f.write_text(src)
        jobs[name] = ["--reward", f"{f}:fn"]
    jobs["bad_regex"] = ["--reward", "format", "--set", "grpo.format_regex=(<answer>.*"]
    nonum = t / "no_numbers.jsonl"
    nonum.write_text("".join(json.dumps({"prompt": f"Name colour {i}.", "answer": "blue"}) + "\n" for i in range(6)))
    jobs["number_match_no_number"] = ["--reward", "number_match"]
    some = t / "some_numbers.jsonl"
    rows = [{"prompt": f"What is {i} + 1?", "answer": str(i + 1)} for i in range(6)] + [
        {"prompt": "Name a colour.", "answer": "blue"}
    ]
    some.write_text("".join(json.dumps(r) + "\n" for r in rows))
    jobs["number_match_some"] = ["--reward", "number_match"]
    data = {"number_match_no_number": nonum, "number_match_some": some}

    def go(item):
        cid, args = item
        return cid, _start(t, cid, *args, data=data.get(cid, FIX))

    with ThreadPoolExecutor(max_workers=4) as pool:
        return dict(pool.map(go, jobs.items()))


@pytest.mark.parametrize("name", list(REWARDS))
def test_a_bad_reward_is_refused_at_start_with_file_function_line_value(refused, name):
    p, home = refused[name]
    err = one_error_line(p)
    for words in REWARDS[name][1]:
        assert words in err, err
    assert f"{name}.py" in err
    assert "internal" not in err and "Traceback" not in p.stderr
    assert not home.exists() or not any(home.iterdir())  # nothing left behind


def test_an_invalid_format_regex_is_refused(refused):
    p, _ = refused["bad_regex"]
    err = one_error_line(p)
    assert "grpo.format_regex '(<answer>.*' is not a valid regular expression" in err


def test_number_match_on_answers_without_numbers(refused):
    p, _ = refused["number_match_no_number"]
    err = one_error_line(p)
    assert "none of the 6 reference answers holds a number" in err and "no_numbers.jsonl:1" in err
    p, _ = refused["number_match_some"]
    assert p.returncode == 0, p.stderr[-2000:]
    assert "number_match: 1 of 7 reference answers hold no number" in p.stderr and "some_numbers.jsonl:7" in p.stderr


def _created(p) -> str:
    assert p.returncode == 0, p.stderr[-3000:]
    return next(ln.split()[-1] for ln in p.stdout.splitlines() if ln.startswith("created run"))


@pytest.mark.train
def test_a_nan_reward_during_training_stops_the_run_with_its_line(sage_home, tiny_model, tmp_path):
    f = tmp_path / "late_nan.py"
    # fine on the check at start (no trainer_state), NaN once TRL calls it in training
    f.write_text(
        "def fn(completions, trainer_state=None, **kw):\n"
        "    if trainer_state is None:\n"
        "        return [0.0] * len(completions)\n"
        "    return [float('nan')] * len(completions)\n"
    )
    p, home = _start(tmp_path, "nan", "--reward", f"{f}:fn", "--name", "latenan")
    run = home / _created(p)
    r = cli("run", str(run), "--no-tui", env={"SAGE_FT_HOME": str(home)}, timeout=400)
    assert r.returncode != 0 and "Traceback" not in r.stderr
    st = read_status(run)
    assert st["state"] == "failed", st
    assert st["error"]["error_kind"] == "config", st  # not "internal" with Python's text
    assert "reward fn" in st["error"]["message"] and "late_nan.py:1" in st["error"]["message"]
    assert "returned nan for completion 0" in st["error"]["message"]
    errors = [json.loads(ln) for ln in (run / "events.jsonl").read_text().splitlines() if '"error"' in ln]
    assert errors and "late_nan.py" in errors[-1]["message"]


@pytest.mark.train
def test_cancel_ends_a_run_whose_reward_never_returns(sage_home, tiny_model, tmp_path):
    f = tmp_path / "hang.py"
    flag = tmp_path / "in_reward"
    f.write_text(
        "import time\nfrom pathlib import Path\n\n\n"
        "def fn(completions, trainer_state=None, **kw):\n"
        "    if trainer_state is None:\n"
        "        return [0.0] * len(completions)\n"
        f"    Path({str(flag)!r}).touch()\n"
        "    while True:\n"
        "        time.sleep(1)\n"
    )
    p, home = _start(tmp_path, "hang", "--reward", f"{f}:fn", "--name", "hang")
    run = home / _created(p)
    r = cli("run", str(run), "--detach", "--no-tui", env={"SAGE_FT_HOME": str(home)}, timeout=120)
    assert r.returncode == 0, r.stderr
    deadline = time.time() + 300
    while not flag.exists() and time.time() < deadline:
        time.sleep(0.5)
    assert flag.exists(), (run / "train.log").read_text()[-3000:]
    pgid = int(read_status(run)["pid"])
    t0 = time.time()
    assert cancel(run, wait=5) is True
    assert time.time() - t0 < 30
    from sage_ft_tui.engine.proc import group_members

    assert group_members(pgid) == []  # the whole group is gone (the old cancel left the worker alive)
    st = read_status(run)
    assert derive_state(run)[0] == "cancelled" and st["exit_reason"].startswith("killed:"), st
    assert "did not stop within 5s of SIGTERM" in st["exit_reason"]
    assert "SIGKILL" in RunLayout(run).train_log.read_text()
