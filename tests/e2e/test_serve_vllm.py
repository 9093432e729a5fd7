"""vLLM cannot run here (no GPU, not installed): check that the command line we build is
what `vllm serve` accepts, for adapter mode and merged mode, and drive the whole
start → ready → API key → stop path through a stand-in `vllm` program.

The stand-in parses its arguments with the flags, formats and rank choices of vLLM's own
parser (vllm/entrypoints/openai/cli_args.py: LoRAParserAction; vllm/config/lora.py:
MaxLoRARanks) with parse_args, so an unknown flag or a malformed value fails it, and it
serves /health and /v1/models the way vLLM does (base name + one entry per LoRA module,
API key from --api-key or VLLM_API_KEY required on /v1)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from sage_ft_tui.engine.deploy import serve as sv
from sage_ft_tui.engine.deploy import serve_command as sc
from sage_ft_tui.engine.deploy.serve_command import lora_module_arg, serve_command, vllm_lora_rank
from sage_ft_tui.engine.deploy.serve_info import server_alive
from sage_ft_tui.engine.errors import SageError

FAKE_VLLM = textwrap.dedent("""
    import argparse, json, os, sys
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    RANKS = [1, 8, 16, 32, 64, 128, 256, 320, 512]

    class LoRAParserAction(argparse.Action):  # as vllm.entrypoints.openai.cli_args
        def __call__(self, parser, namespace, values, option_string=None):
            out = []
            for item in values:
                if item in (None, ""):
                    continue
                if "=" in item and "," not in item:
                    name, path = item.split("=")
                    out.append({"name": name, "path": path})
                else:
                    try:
                        d = json.loads(item)
                    except json.JSONDecodeError:
                        parser.error(f"Invalid JSON format for --lora-modules: {item}")
                    if set(d) - {"name", "path", "base_model_name"} or not {"name", "path"} <= set(d):
                        parser.error(f"Invalid fields for --lora-modules: {item}")
                    out.append(d)
            setattr(namespace, self.dest, out)

    p = argparse.ArgumentParser(prog="vllm")
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("serve")
    s.add_argument("model_tag")
    s.add_argument("--host")
    s.add_argument("--port", type=int, default=8000)
    s.add_argument("--served-model-name", nargs="+")
    s.add_argument("--api-key", nargs="+")
    s.add_argument("--enable-lora", action="store_true")
    s.add_argument("--lora-modules", nargs="+", action=LoRAParserAction)
    s.add_argument("--max-lora-rank", type=int, choices=RANKS)
    s.add_argument("--gpu-memory-utilization", type=float)
    s.add_argument("--revision")
    s.add_argument("--trust-remote-code", action="store_true")
    s.add_argument("--chat-template")
    a = p.parse_args()
    if a.lora_modules and not a.enable_lora:
        p.error("--lora-modules needs --enable-lora")
    if a.chat_template and not os.path.isfile(a.chat_template):
        p.error("--chat-template: no such file")
    for m in a.lora_modules or []:
        if not os.path.isfile(os.path.join(m["path"], "adapter_config.json")):
            p.error(f"LoRA path {m['path']} has no adapter_config.json")
    keys = a.api_key or ([os.environ["VLLM_API_KEY"]] if os.environ.get("VLLM_API_KEY") else None)
    names = list(a.served_model_name or [a.model_tag]) + [m["name"] for m in a.lora_modules or []]
    with open("fake_vllm_args.json", "w") as fh:
        json.dump({"argv": sys.argv[1:], "args": vars(a), "keys": keys}, fh)

    class H(BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass
        def _send(self, code, obj):
            body = json.dumps(obj).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        def do_GET(self):
            if self.path == "/health":
                return self._send(200, {})
            if self.path.startswith("/v1") and keys and self.headers.get("Authorization") not in [f"Bearer {k}" for k in keys]:
                return self._send(401, {"error": "Unauthorized"})
            if self.path == "/v1/models":
                return self._send(200, {"object": "list", "data": [{"id": n, "object": "model", "created": 0, "owned_by": "vllm"} for n in names]})
            self._send(404, {})

    print(f"fake vllm serving {names} on {a.host}:{a.port}", flush=True)
    ThreadingHTTPServer((a.host or "0.0.0.0", a.port), H).serve_forever()
""")


@pytest.fixture
def fake_vllm(tmp_path, monkeypatch) -> Path:
    bindir = tmp_path / "bin"
    bindir.mkdir()
    exe = bindir / "vllm"
    exe.write_text(f"#!{sys.executable}\n" + FAKE_VLLM)
    exe.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setattr(sc, "find_program", lambda name: str(exe) if name == "vllm" else shutil.which(name))
    return exe


@pytest.fixture
def run_dir(sage_home, tiny_model) -> Path:
    from sage_ft_tui.engine.config.schema import RunConfig
    from sage_ft_tui.engine.runs.create import create_run

    run = create_run(
        RunConfig.from_dict({"name": "vrun", "task": "qa", "data": {"paths": ["x"]}, "lora": {"r": 12}}), prepare=False
    )
    ad = run / "adapter"
    ad.mkdir()
    (ad / "adapter_config.json").write_text(
        json.dumps({"r": 12, "lora_alpha": 24, "peft_type": "LORA", "base_model_name_or_path": str(tiny_model)})
    )
    (ad / "adapter_model.safetensors").write_bytes(b"0")
    (ad / "chat_template.jinja").write_text("{{ messages }}")
    return run


def _parse_with_fake(exe: Path, cmd: list[str], cwd: Path) -> subprocess.CompletedProcess:
    """Run the stand-in's parser only (it exits before serving when given --help-free bad args)."""
    return subprocess.run([sys.executable, str(exe)] + cmd[1:], cwd=cwd, capture_output=True, text=True, timeout=5)


def test_rank_rounding_and_lora_module_forms():
    assert [vllm_lora_rank(r) for r in (1, 2, 8, 12, 16, 17, 64, 300, 512)] == [1, 8, 8, 16, 16, 32, 64, 320, 512]
    with pytest.raises(SageError, match="above vLLM's maximum"):
        vllm_lora_rank(1024)
    assert lora_module_arg("run1", "/a/b") == "run1=/a/b"
    assert json.loads(lora_module_arg("run1", "/a/b=c,d")) == {"name": "run1", "path": "/a/b=c,d"}


def test_adapter_mode_command_line(run_dir, fake_vllm, monkeypatch, tiny_model):
    monkeypatch.setattr(sc, "gpu_present", lambda: True)
    command = serve_command(run_dir, backend="auto", port=0, gpu_memory_utilization=0.8)
    assert command.backend == "vllm" and command.mode == "adapter" and command.model == "vrun"
    c = command.cmd
    assert c[:3] == [str(fake_vllm), "serve", str(tiny_model)]
    assert c[c.index("--lora-modules") + 1] == f"vrun={run_dir / 'adapter'}"
    assert "--enable-lora" in c and c[c.index("--max-lora-rank") + 1] == "16"  # r=12 → 16
    assert c[c.index("--gpu-memory-utilization") + 1] == "0.8"
    assert c[c.index("--host") + 1] == "127.0.0.1" and c[c.index("--port") + 1] == str(command.port) != "0"
    assert c[c.index("--chat-template") + 1] == str(run_dir / "adapter" / "chat_template.jinja")


def test_merged_mode_command_line_and_key_in_env(run_dir, fake_vllm, monkeypatch):
    from sage_ft_tui.engine.runs.layout import merged_report

    merged = run_dir / "merged"
    merged.mkdir()
    (merged / "config.json").write_text("{}")
    merged_report(merged).write_text(json.dumps({"self_check": {"passed": True}}))
    command = serve_command(run_dir, backend="vllm", mode="merged", host="0.0.0.0", port=0, api_key="s3cret")
    assert command.mode == "merged" and command.model == "vrun" and command.api_key_enforced
    c = command.cmd
    assert c[1:3] == ["serve", str(merged)] and c[c.index("--served-model-name") + 1] == "vrun"
    assert "--enable-lora" not in c and "--lora-modules" not in c
    assert "s3cret" not in " ".join(c) and command.env["VLLM_API_KEY"] == "s3cret"  # not visible in `ps`
    # vllm auto-selects merged when a checked merged folder exists
    monkeypatch.setattr(sc, "gpu_present", lambda: True)
    assert serve_command(run_dir, port=0).mode == "merged"
    assert serve_command(run_dir, port=0, mode="adapter").mode == "adapter"


def test_stand_in_rejects_what_vllm_rejects(fake_vllm, tmp_path):
    bad_rank = ["vllm", "serve", "m", "--enable-lora", "--lora-modules", "a=/x", "--max-lora-rank", "12"]
    p = _parse_with_fake(fake_vllm, bad_rank, tmp_path)
    assert p.returncode == 2 and "invalid choice: 12" in p.stderr
    p = _parse_with_fake(fake_vllm, ["vllm", "serve", "m", "--no-such-flag"], tmp_path)
    assert p.returncode == 2 and "unrecognized arguments" in p.stderr


def test_auto_prefers_transformers_without_gpu(run_dir, fake_vllm, monkeypatch):
    monkeypatch.setattr(sc, "gpu_present", lambda: False)
    with pytest.raises(SageError, match="no merged model yet"):  # → transformers, which needs merged/
        serve_command(run_dir, port=0)


def test_full_start_stop_through_stand_in(run_dir, fake_vllm, monkeypatch):
    import openai

    monkeypatch.setattr(sc, "gpu_present", lambda: True)
    command = serve_command(run_dir, port=0, host="0.0.0.0", api_key="k-123")
    assert command.url.startswith("http://") and command.local_url.startswith("http://127.0.0.1:")
    info = sv.start(command, timeout=30)
    try:
        got = json.loads((run_dir / "fake_vllm_args.json").read_text())
        assert got["args"]["enable_lora"] and got["args"]["lora_modules"] == [
            {"name": "vrun", "path": str(run_dir / "adapter")}
        ]
        assert got["args"]["max_lora_rank"] == 16 and got["keys"] == ["k-123"]
        assert info["state"] == "ready" and info["api_key_enforced"] and info["model"] == "vrun"
        ok = openai.OpenAI(base_url=info["base_url"], api_key="k-123", max_retries=0)
        assert "vrun" in [m.id for m in ok.models.list().data]
        bad = openai.OpenAI(base_url=info["base_url"], api_key="wrong", max_retries=0)
        with pytest.raises(openai.AuthenticationError):
            bad.models.list()
        assert sv.status(run_dir)[0]["state"] == "ready" and sv.status(run_dir)[0]["api_key"] == "set"
    finally:
        res = sv.stop(run_dir)
    assert res["state"] == "stopped" and not server_alive(info)
    assert not (run_dir / "serve.json").exists()
