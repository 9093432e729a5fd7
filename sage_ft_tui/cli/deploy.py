"""`merge`, `serve` and `chat`: from a trained adapter to a conversation.

    sage-ft-tui merge RUN [--checkpoint N|latest] [--dtype] [--output] [--force] [--json]
    sage-ft-tui serve RUN [--port] [--host] [--backend] [--adapter|--merged] [--api-key] ...
    sage-ft-tui serve --status [RUN]        sage-ft-tui serve --stop RUN
    sage-ft-tui chat RUN [--system] [--temperature] [--max-tokens] [--serve]

Errors are one line on stderr (what, where, what to do) and a non-zero exit. With --json,
merge and serve write the job protocol's records on stdout (engine/jobs.py: progress,
result, error with its parts as fields), which is what the TUI's screens read.
"""

from __future__ import annotations

import json
import sys
from typing import Optional

import typer

from sage_ft_tui.cli.base import fail, out
from sage_ft_tui.cli.options import NoTui
from sage_ft_tui.engine import jobs
from sage_ft_tui.engine.errors import SageError
from sage_ft_tui.engine.runs.layout import RunLayout


def _interrupt_on_term() -> None:
    """SIGTERM (and an inherited ignored SIGINT) become KeyboardInterrupt, so clean-up runs."""
    import signal

    def interrupted(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, interrupted)


def _checkpoint_arg(v: Optional[str]) -> Optional[str]:
    return None if v is None else v.strip()  # N or "latest": find_adapter reads both


def merge_cmd(
    run: str = typer.Argument(..., help="Run name or folder."),
    checkpoint: Optional[str] = typer.Option(
        None, "--checkpoint", help="Merge checkpoint N (or 'latest', by step number) instead of the final adapter."
    ),
    dtype: str = typer.Option("auto", "--dtype", help="auto | float32 | bfloat16 | float16 (auto: the base model's)."),
    output: Optional[str] = typer.Option(
        None, "--output", "-o", help="Folder for the merged model (default: RUN/merged)."
    ),
    force: bool = typer.Option(
        False, "--force", help="Replace an existing merged folder (only once the new one is complete)."
    ),
    json_out: bool = typer.Option(False, "--json", help="Progress and the report as JSON lines."),
    no_tui: bool = NoTui,
):
    """Merge the LoRA adapter into the base model, self-check it, save safetensors + tokenizer."""
    from sage_ft_tui.engine.deploy.merge import merge_run

    _interrupt_on_term()  # Ctrl-C or SIGTERM (the TUI's cancel): the merge removes its temporary folder

    def progress(stage: str, info: dict) -> None:
        if json_out:
            jobs.emit_progress("merge", stage, info)
        elif stage in ("resolve", "load", "merge", "save", "check"):
            what = {
                "resolve": f"adapter: {info.get('label')} ({info.get('adapter')})",
                "load": f"loading {info.get('base')} as {info.get('dtype')} on {info.get('device')}",
                "merge": "merging (merge_and_unload)",
                "save": f"saving {info.get('params', 0):,} parameters",
                "check": "self-check: merged (re-loaded) vs base+adapter",
            }[stage]
            out(f"  {what}", err=True)

    try:
        report = merge_run(
            run, checkpoint=_checkpoint_arg(checkpoint), dtype=dtype, output=output, force=force, progress=progress
        )
    except SageError as e:
        fail(e, "merge" if json_out else None)
    except KeyboardInterrupt:
        out("merge interrupted; nothing was changed", err=True)
        raise typer.Exit(130) from None
    if json_out:
        jobs.emit_result("merge", {"report": report})
        return
    sc = report["self_check"]
    from sage_ft_tui.engine.fsutil import fmt_bytes

    out(f"merged {report['run']} ({report['source']}) → {report['output']}")
    out(f"  weights    {len(report['shards'])} safetensors shard(s), {fmt_bytes(report['bytes'])}, {report['dtype']}")
    out(f"  eos        {', '.join(report['eos_tokens'])}   chat template: {'yes' if report['chat_template'] else 'no'}")
    out(
        f"  self-check passed: max relative logit difference {sc['max_rel_diff']:.1e} (tolerance {sc['tolerance']:.0e}), "
        f"top-1 agreement {sc['top1_agreement']:.0%}"
    )
    out(f"  took       {report['seconds']:.1f}s, peak memory {fmt_bytes(report['peak_rss_bytes'])}")
    out(f"  serve it   sage-ft-tui serve {report['run']}")


def serve_cmd(
    run: Optional[str] = typer.Argument(None, help="Run name or folder."),
    port: int = typer.Option(8000, "--port", help="TCP port (0: any free port)."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to bind; anything but loopback needs --api-key."),
    backend: str = typer.Option("auto", "--backend", help="auto | vllm | transformers."),
    adapter: Optional[bool] = typer.Option(
        None, "--adapter/--merged", help="vLLM: serve the LoRA adapter on the base model, or the merged model."
    ),
    api_key: Optional[str] = typer.Option(
        None, "--api-key", envvar="SAGE_FT_API_KEY", help="Key clients must send (vLLM enforces it)."
    ),
    gpu_memory_utilization: Optional[float] = typer.Option(
        None, "--gpu-memory-utilization", help="vLLM: fraction of GPU memory to use."
    ),
    device: str = typer.Option("auto", "--device", help="transformers backend: auto | cpu | cuda:N."),
    timeout: Optional[float] = typer.Option(
        None, "--timeout", help="Seconds to wait for start-up (default 180 transformers, 900 vLLM)."
    ),
    show_status: bool = typer.Option(False, "--status", help="List the servers started here (or RUN's)."),
    stop_it: bool = typer.Option(False, "--stop", help="Stop RUN's server (its whole process group)."),
    json_out: bool = typer.Option(False, "--json", help="JSON output."),
    no_tui: bool = NoTui,
):
    """Serve a run as an OpenAI-compatible endpoint (detached; logs in RUN/serve.log)."""
    from sage_ft_tui.engine.deploy import serve as sv
    from sage_ft_tui.engine.deploy.serve_command import serve_command
    from sage_ft_tui.engine.deploy.serve_info import public

    _interrupt_on_term()  # a server being started is stopped again, never orphaned
    try:
        if show_status and stop_it:
            raise SageError("--status and --stop go separately", hint="use one of them")
        if stop_it:
            if not run:
                raise SageError("--stop needs the run whose server to stop", hint="sage-ft-tui serve --stop RUN")
            res = sv.stop(run)
            if json_out:
                jobs.emit_result("serve", res)
            else:
                out(f"{res['run']}: server {sv.stopped_text(res)} (pid {res.get('pid')}, {res.get('url')})")
            return
        if show_status:
            rows = sv.status(run)
            if json_out:
                out(json.dumps(rows, default=str))
            elif not rows:
                out("no servers running (start one with `sage-ft-tui serve RUN`)")
            else:
                for r in rows:
                    if "url" not in r:
                        out(f"{r['run']}: {r['state']}")
                        continue
                    out(f"{r['run']}: {r['state']}  {r['backend']}/{r['mode']}  {r['url']}  pid {r['pid']}")
                    out(f"  model: {r['model']}   log: {r['log']}")
            return
        if not run:
            raise SageError(
                "which run? serve needs RUN", hint="sage-ft-tui serve RUN (see `sage-ft-tui list`), or --status"
            )
        mode = None if adapter is None else ("adapter" if adapter else "merged")
        command = serve_command(
            run,
            backend=backend,
            mode=mode,
            host=host,
            port=port,
            api_key=api_key,
            gpu_memory_utilization=gpu_memory_utilization,
            device=device,
        )
        for note in command.notes:
            out(f"note: {note}", err=True)
        if not json_out:
            out(
                f"starting {command.backend} ({command.mode}) on {command.url} ... log: {RunLayout(command.run).serve_log}",
                err=True,
            )
        info = sv.start(command, timeout=timeout)
    except SageError as e:
        fail(e, "serve" if json_out else None)
    except KeyboardInterrupt:
        out("interrupted; the server was stopped", err=True)
        raise typer.Exit(130) from None
    if json_out:
        jobs.emit_result("serve", public(info))
        return
    out(f"serving {info['run']} with {info['backend']} ({info['mode']}) — ready in {info['startup_s']:.1f}s")
    out(f"  url      {info['url']}/v1   (OpenAI-compatible)")
    out(f"  model    {info['model']}")
    out(
        f"  api key  {'required' if info['api_key_enforced'] else ('sent but not enforced' if info['api_key'] else 'none (loopback only)')}"
    )
    out(f"  chat     sage-ft-tui chat {info['run']}")
    out(f"  stop     sage-ft-tui serve --stop {info['run']}")


def chat_cmd(
    run: str = typer.Argument(..., help="Run name or folder (served, or use --serve)."),
    system: Optional[str] = typer.Option(None, "--system", help="System prompt."),
    temperature: float = typer.Option(0.7, "--temperature", help="Sampling temperature (0-2)."),
    max_tokens: int = typer.Option(256, "--max-tokens", help="Most tokens per reply."),
    serve_first: bool = typer.Option(
        False, "--serve", help="Start the server first if it is not running (stopped again on exit)."
    ),
    keep_server: bool = typer.Option(False, "--keep-server", help="With --serve: leave the server running on exit."),
    backend: str = typer.Option("auto", "--backend", help="With --serve: auto | vllm | transformers."),
    port: int = typer.Option(0, "--port", help="With --serve: port (0: any free port)."),
    no_tui: bool = NoTui,
):
    """Streaming terminal chat with a served run (/image PATH, /reset, /system, /temp, /max, /exit)."""
    from sage_ft_tui.engine.deploy import serve as sv
    from sage_ft_tui.engine.deploy.chat import ChatSession, ChatSettings, endpoint_for_run, repl
    from sage_ft_tui.engine.deploy.serve_command import serve_command
    from sage_ft_tui.engine.deploy.serve_info import read_serve, server_alive
    from sage_ft_tui.engine.paths import resolve_run

    started = None
    _interrupt_on_term()
    try:
        settings = ChatSettings(system=system, temperature=temperature, max_tokens=max_tokens).validate()
        run_dir = resolve_run(run)
        info = read_serve(run_dir)
        if serve_first and not (info and server_alive(info)):
            command = serve_command(run_dir, backend=backend, port=port)
            out(f"starting {command.backend} ({command.mode}) on {command.url} ...", err=True)
            started = sv.start(command)
            out(f"server ready in {started['startup_s']:.1f}s", err=True)
        session = ChatSession(endpoint_for_run(run_dir), settings)
        repl(session, sys.stdin, sys.stdout, show_prompt=sys.stdin.isatty())
    except SageError as e:
        _stop_started(started, keep_server, run)
        fail(e)
    except KeyboardInterrupt:
        out("", err=True)
    _stop_started(started, keep_server, run)


def _stop_started(started, keep: bool, run: str) -> None:
    if not started:
        return
    from sage_ft_tui.engine.deploy import serve as sv

    if keep:
        out(
            f"server still running at {started['url']}; stop it with `sage-ft-tui serve --stop {started['run']}`",
            err=True,
        )
        return
    try:
        sv.stop(run)
    except SageError as e:
        out(e.oneline(), err=True)


def register(app: typer.Typer) -> None:
    app.command("merge")(merge_cmd)
    app.command("serve")(serve_cmd)
    app.command("chat")(chat_cmd)
