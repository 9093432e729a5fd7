"""The data-loss corpus: every destructive command aimed at folders that are not ours.

Each case runs one real `sage-ft-tui ... --no-tui` command in a fresh world (built by
`make_world`) and the WHOLE world — runs home, the user's folders outside it, the cwd — is
hashed before and after: not one byte may change. `{H}` is the runs home, `{W}` the world.

World:
  {H}/done       a completed run of ours (adapter, events, status)
  {H}/homemade   a user's folder in the runs home with config.yaml + status.json, no marker
  {H}/garbage    a run of ours whose status.json is garbage
  {H}/listy      a run of ours whose status.json is a JSON list
  {H}/badstep    a run of ours whose status.json holds step "abc" and pid "x"
  {H}/escape     a symlink in the home pointing at {W}/outside/user
  {H}/ourlink    a symlink in the home pointing at {W}/outside/ours (a marked run outside)
  {W}/outside/user   a user's folder with config.yaml, status.json, notes and a model
  {W}/outside/ours   a run of ours (a copy) outside the runs home
  {W}/cwd/mine       a folder in the cwd with the name of no run (config.yaml + status.json)
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Optional


@dataclass
class OwnCase:
    id: str
    what: str  # in words (docs/RELIABILITY.md)
    args: list[str]
    expect: list[str]  # substrings of the one error line; for ok cases, of stdout
    ok: bool = False  # a command that must succeed (list with odd runs) and still change nothing


def _user_folder(d: Path) -> None:
    d.mkdir(parents=True)
    (d / "config.yaml").write_text("name: mine\ntask: qa\n")
    (d / "status.json").write_text(json.dumps({"state": "completed", "pid": 1}))
    (d / "notes.txt").write_text("the user's own notes\n")
    (d / "model").mkdir()
    (d / "model" / "config.json").write_text('{"model_type": "llama"}')
    (d / "serve.json").write_text(json.dumps({"pid": 1, "pgid": 1, "port": 1, "host": "127.0.0.1"}))


def _our_run(home: Path, name: str, state: str = "completed") -> Path:
    from sage_ft_tui.engine.config.schema import RunConfig
    from sage_ft_tui.engine.runs.create import create_run
    from sage_ft_tui.engine.runs.state import write_status

    cfg = RunConfig.from_dict({"name": name, "task": "qa", "model": {"name": "tiny-demo"}, "data": {"paths": ["x"]}})
    run = create_run(cfg, home, prepare=False)
    write_status(run, state=state, step=3, total_steps=3)
    (run / "events.jsonl").write_text(f'{{"v":1,"t":1,"kind":"status","state":"{state}"}}\n')
    (run / "adapter").mkdir()
    (run / "adapter" / "adapter_config.json").write_text('{"peft_type": "LORA", "r": 4}')
    (run / "adapter" / "adapter_model.safetensors").write_bytes(b"\0" * 64)
    return run


def make_world(w: Path) -> Path:
    """Build the world; returns the runs home."""
    home = w / "home"
    home.mkdir(parents=True)
    _our_run(home, "done")
    _user_folder(home / "homemade")
    (_our_run(home, "garbage") / "status.json").write_text("{garbage")
    (_our_run(home, "listy") / "status.json").write_text("[1, 2]")
    (_our_run(home, "badstep") / "status.json").write_text(
        json.dumps({"state": "completed", "step": "abc", "pid": "x"})
    )
    _user_folder(w / "outside" / "user")
    shutil.copytree(home / "done", w / "outside" / "ours")
    os.symlink(w / "outside" / "user", home / "escape")
    os.symlink(w / "outside" / "ours", home / "ourlink")
    _user_folder(w / "cwd" / "mine")
    return home


NOT_OURS = "no .sage-ft-run marker"

CASES: list[OwnCase] = [
    # ---- clean --------------------------------------------------------------------------
    OwnCase(
        "clean_homemade",
        "clean a home-made folder in the runs home",
        ["clean", "homemade", "--yes"],
        [NOT_OURS, "refusing to delete"],
    ),
    OwnCase(
        "clean_outside_user",
        "clean a user's folder outside the home, by path",
        ["clean", "{W}/outside/user", "--yes"],
        ["not inside the runs home", "refusing to delete"],
    ),
    OwnCase(
        "clean_outside_ours",
        "clean a run of ours that lies outside the home",
        ["clean", "{W}/outside/ours", "--yes"],
        ["not inside the runs home"],
    ),
    OwnCase(
        "clean_cwd_name",
        "clean NAME where only ./NAME exists (no ./NAME fallback)",
        ["clean", "mine", "--yes"],
        ["no run 'mine'", "./mine is not looked at"],
    ),
    OwnCase(
        "clean_cwd_path", "clean ./NAME given as a path", ["clean", "./mine", "--yes"], ["not inside the runs home"]
    ),
    OwnCase(
        "clean_symlink_out",
        "clean a symlink in the home that points out of it",
        ["clean", "escape", "--yes"],
        ["it is a symlink", "refusing to delete"],
    ),
    OwnCase(
        "clean_symlink_ours",
        "clean a symlink in the home to a run of ours outside",
        ["clean", "ourlink", "--yes"],
        ["it is a symlink"],
    ),
    OwnCase("clean_home_itself", "clean the runs home itself", ["clean", "{H}", "--yes"], ["refusing to delete"]),
    OwnCase("clean_dotdot", "clean '..' (the parent of the cwd)", ["clean", "..", "--yes"], ["refusing to delete"]),
    OwnCase("clean_file", "clean a file", ["clean", "{W}/outside/user/notes.txt", "--yes"], ["refusing to delete"]),
    # ---- merge --output --force -----------------------------------------------------------
    OwnCase(
        "merge_force_user_dir",
        "merge --output a user's folder --force",
        ["merge", "done", "--output", "{W}/outside/user", "--force"],
        ["not a merged model written by sage-ft-tui", "refusing to replace"],
    ),
    OwnCase(
        "merge_force_run_dir",
        "merge --output the run folder itself --force",
        ["merge", "done", "--output", "{H}/done", "--force"],
        ["not a merged model written by sage-ft-tui"],
    ),
    OwnCase(
        "merge_force_home",
        "merge --output the runs home --force",
        ["merge", "done", "--output", "{H}", "--force"],
        ["not a merged model written by sage-ft-tui"],
    ),
    OwnCase(
        "merge_force_adapter",
        "merge --output the run's adapter folder --force",
        ["merge", "done", "--output", "{H}/done/adapter", "--force"],
        ["not a merged model written by sage-ft-tui"],
    ),
    OwnCase(
        "merge_homemade",
        "merge a home-made folder (would write merged/ into it)",
        ["merge", "homemade"],
        [NOT_OURS, "refusing to merge"],
    ),
    # ---- run / resume ---------------------------------------------------------------------
    OwnCase("run_homemade", "run a home-made folder", ["run", "homemade"], [NOT_OURS, "refusing to train"]),
    OwnCase("run_cwd_name", "run NAME where only ./NAME exists", ["run", "mine"], ["no run 'mine'"]),
    OwnCase(
        "run_outside_user",
        "run a user's folder outside the home",
        ["run", "{W}/outside/user"],
        [NOT_OURS],
    ),
    OwnCase(
        "run_symlink_out", "run a symlink in the home that points at a user's folder", ["run", "escape"], [NOT_OURS]
    ),
    OwnCase(
        "run_completed",
        "run over a completed run",
        ["run", "done"],
        ["has already completed", "sage-ft-tui run", "--from-run done"],
    ),
    OwnCase(
        "run_garbage_status",
        "run a run whose status.json is garbage",
        ["run", "garbage"],
        ["state is unknown (status.json unreadable)", "--force"],
    ),
    OwnCase(
        "run_badstep_status",
        "run a run whose status.json has a non-integer step",
        ["run", "badstep"],
        ["status.json unreadable"],
    ),
    OwnCase("resume_homemade", "resume a home-made folder", ["resume", "homemade"], [NOT_OURS, "refusing to resume"]),
    OwnCase(
        "resume_completed",
        "resume a completed run (would train past its plan)",
        ["resume", "done"],
        ["has already completed", "resume would train past its plan", "--from-run done"],
    ),
    OwnCase(
        "resume_list_status",
        "resume a run whose status.json is a JSON list",
        ["resume", "listy"],
        ["state is unknown", "--force"],
    ),
    OwnCase("resume_cwd_path", "resume ./NAME (a folder in the cwd)", ["resume", "./mine"], [NOT_OURS]),
    # ---- serve / cancel / chat -------------------------------------------------------------
    OwnCase(
        "serve_homemade",
        "serve a home-made folder (would write serve.json/serve.log)",
        ["serve", "homemade"],
        [NOT_OURS, "refusing to serve"],
    ),
    OwnCase(
        "serve_stop_user",
        "serve --stop a user's folder holding a serve.json",
        ["serve", "--stop", "{W}/outside/user"],
        [NOT_OURS],
    ),
    OwnCase(
        "serve_outside_path", "serve a user's folder by path", ["serve", "{W}/outside/user", "--port", "0"], [NOT_OURS]
    ),
    OwnCase(
        "cancel_homemade", "cancel a home-made folder whose status.json names pid 1", ["cancel", "homemade"], [NOT_OURS]
    ),
    OwnCase("chat_serve_homemade", "chat --serve a home-made folder", ["chat", "homemade", "--serve"], [NOT_OURS]),
    OwnCase("attach_homemade", "attach to a home-made folder", ["attach", "homemade"], [NOT_OURS]),
    # ---- odd status.json: never a crash, the rest still listed -----------------------------
    OwnCase(
        "list_odd_status",
        "list with garbage / list / non-integer status.json runs",
        ["list"],
        ["unknown (status.json unreadable)", "done"],
        ok=True,
    ),
    OwnCase(
        "list_json_odd_status",
        "list --json with odd status.json runs",
        ["list", "--json"],
        ['"label": "unknown (status.json unreadable)"', '"name": "done"'],
        ok=True,
    ),
]


def expand(args: list[str], world: Path, home: Path) -> list[str]:
    return [a.replace("{W}", str(world)).replace("{H}", str(home)) for a in args]


def world_digest(w: Path) -> dict[str, Optional[str]]:
    """Every file (hash), folder and symlink (target) under the world."""
    import hashlib

    out: dict[str, Optional[str]] = {}
    for p in sorted(w.rglob("*")):
        rel = str(p.relative_to(w))
        if p.is_symlink():
            out[rel] = "-> " + os.readlink(p)
        elif p.is_file():
            out[rel] = hashlib.sha256(p.read_bytes()).hexdigest()
        else:
            out[rel] = None
    return out
