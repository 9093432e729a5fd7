"""Markers by cost, applied at collection and checked as each test runs.

- `model`: uses a model (the tiny model or the zoo; built on first use, then loaded).
- `train`: trains (in-process, or a worker / the CLI / a queue or sweep it starts).
- `subprocess`: starts our processes (the CLI, a worker, a server, torchrun, tmux).
- `tmux`: drives a real terminal in tmux.

A test gets a marker from its folder (FOLDERS), from a fixture it uses (FIXTURES: a shared one by
name, a module's own as `file::fixture`), from the table of tests (TESTS, `file::function`, every parameter), or from its
own `@pytest.mark...` / its module's `pytestmark`. The markers cannot drift: a test that starts a
process or a training run without its marker fails, naming the marker to add (`check_started`).
The developer loop `-m "not train and not subprocess and not tmux"` relies on that.
"""

from __future__ import annotations

import os
from pathlib import Path

FIXTURES: dict[str, set[str]] = {
    "tiny_model": {"model"},
    "zoo": {"model"},
    "vlm_zoo": {"model"},
    "zoo_family": {"model"},
    "demo_run": {"model", "train", "subprocess"},
    "reaper": {"subprocess"},
    "tests/unit/test_chat_images.py::server": {"subprocess"},  # the recording OpenAI stand-in
    "tests/tui/test_chat_screen.py::served": {"subprocess"},  # a real server
}

# The end-to-end and fault suites go through the real CLI and worker by design (a few of their
# tests do not: they run with the rest).
FOLDERS: dict[str, set[str]] = {"tests/e2e/": {"subprocess"}, "tests/reliability/": {"subprocess"}}

# Tests that start processes or train in ways no fixture says (a helper, the app they drive).
TESTS: dict[str, set[str]] = {
    "tests/e2e/test_cli.py::test_start_writes_config_and_report_then_run_config_reproduces": {"train"},
    "tests/e2e/test_cli_output.py::test_demo_on_a_terminal_prints_the_answers_after_the_monitor_closes": {
        "tmux",
        "train",
    },
    "tests/e2e/test_quickstart_code.py::test_quickstart_code_bad_repo_is_one_error_line": {"train"},
    "tests/reliability/test_ownership.py::test_not_ours_is_never_touched": {"train"},
    "tests/reliability/test_ownership.py::test_permission_problems_are_one_line_naming_the_path": {"train"},
    "tests/reliability/test_queue.py::test_queue_commands_refuse_bad_input_in_one_line": {"train"},
    "tests/reliability/test_queue.py::test_run_slurm_submits_with_sbatch_when_installed_and_says_how_when_not": {
        "train"
    },
    "tests/reliability/test_round2_config.py::test_a_completed_run_without_its_adapter_never_suggests_resume": {
        "train"
    },
    "tests/reliability/test_round2_config.py::test_fp16_planned_elsewhere_is_created_then_refused_where_it_trains": {
        "train"
    },
    "tests/reliability/test_round2_config.py::test_newcomer_quickstart_completes_offline_with_only_data": {"train"},
    "tests/reliability/test_round2_config.py::test_two_launches_at_once_start_one_worker_and_refuse_the_other": {
        "train"
    },
    "tests/reliability/test_round2_rewards.py::test_a_nan_reward_during_training_stops_the_run_with_its_line": {
        "train"
    },
    "tests/reliability/test_round2_rewards.py::test_cancel_ends_a_run_whose_reward_never_returns": {"train"},
    "tests/reliability/test_security.py::test_offline_means_no_network_anywhere_and_a_trained_run_has_sane_permissions": {
        "train"
    },
    "tests/tui/test_app.py::test_full_wizard_by_keys_trains_then_cancels": {"subprocess"},
    "tests/tui/test_chat_screen.py::test_chat_screen_without_a_server_says_so": {"subprocess"},
    "tests/tui/test_chat_screen.py::test_merge_screen_runs_a_real_merge": {"subprocess"},
    "tests/tui/test_app.py::test_tui_process_never_imports_torch": {"subprocess"},
    "tests/tui/test_chat_images.py::test_image_is_shown_and_sent_with_the_next_message": {"subprocess"},
    "tests/tui/test_job_screens.py::test_evaluate_offers_cancel_while_it_runs": {"subprocess"},
    "tests/tui/test_job_screens.py::test_serve_shows_a_running_servers_port_and_stop_while_starting": {"subprocess"},
    "tests/tui/test_method_step.py::test_grpo_rewards_builtin_or_a_checked_file": {"subprocess"},
    "tests/tui/test_monitor_end.py::test_monitor_says_the_final_step_as_soon_as_the_log_does": {"subprocess"},
    "tests/tui/test_queue_screen.py::test_runs_queues_a_created_run_and_the_real_scheduler_takes_it": {
        "subprocess",
        "train",
    },
    "tests/unit/test_code_scan.py::test_engine_module_is_torch_and_textual_free": {"subprocess"},
    "tests/unit/test_data_inspect.py::test_cli_refuses_max_length_8_in_one_line": {"subprocess"},
    "tests/unit/test_export_gguf.py::test_a_preference_run_exports": {"subprocess"},
    "tests/unit/test_export_gguf.py::test_disk_full_while_writing_is_one_line_and_keeps_the_old_file": {"subprocess"},
    "tests/unit/test_family.py::test_doctor_model_says_family_template_and_attention": {"subprocess"},
    "tests/unit/test_family.py::test_family_is_light": {"subprocess"},
    "tests/unit/test_fsdp_cpu.py::test_fsdp_two_cpu_processes_one_adapter": {"subprocess"},
    "tests/unit/test_gpu_check.py::test_cpu_smoke_runs_every_phase_and_writes_the_report": {"subprocess"},
    "tests/unit/test_hardware_ddp.py::test_two_cpu_processes_one_event_stream": {"subprocess"},
    "tests/unit/test_jobs.py::test_run_job_error_record_and_silent_failure": {"subprocess"},
    "tests/unit/test_jobs.py::test_run_job_streams_progress_and_returns_the_result": {"subprocess"},
    "tests/unit/test_method_registry.py::test_reading_the_registry_loads_no_ml_stack": {"subprocess"},
    "tests/unit/test_merge.py::test_bad_inputs_are_one_line_errors": {"subprocess"},
    "tests/unit/test_merge.py::test_helpers_are_light": {"subprocess"},
    "tests/unit/test_merge.py::test_sigterm_mid_merge_keeps_the_old_model": {"subprocess"},
    "tests/unit/test_probe.py::test_no_heavy_imports": {"subprocess"},
    "tests/unit/test_proc.py::test_a_zombie_and_a_reused_pid_count_as_dead": {"subprocess"},
    "tests/unit/test_proc.py::test_kill_group_ends_the_leader_and_its_children": {"subprocess"},
    "tests/unit/test_proc.py::test_spawn_detached_runs_in_its_own_session_and_logs": {"subprocess"},
}

# What a started process is, from its argv: training, or one of our processes at all.
TRAINING_MODULES = (
    "sage_ft_tui.engine.worker",
    "sage_ft_tui.engine.train.worker",
    "sage_ft_tui.engine.queue",
    "sage_ft_tui.engine.sweep",
    "torch.distributed.run",
)
TRAINING_COMMANDS = {"run", "resume", "demo", "quickstart", "sweep", "queue"}  # of `python -m sage_ft_tui`


def marks_for(rel_path: str, function: str, fixturenames: list[str]) -> set[str]:
    """The cost markers a test gets from the table and the fixtures it uses."""
    out = set(TESTS.get(f"{rel_path}::{function}", ()))
    for folder, marks in FOLDERS.items():
        if rel_path.startswith(folder):
            out |= marks
    for name in fixturenames:
        out |= FIXTURES.get(name, set()) | FIXTURES.get(f"{rel_path}::{name}", set())
    return out


def _argv(args) -> list[str]:
    if isinstance(args, (str, bytes, os.PathLike)):
        return str(args if not isinstance(args, bytes) else args.decode()).split()
    return [str(a) for a in args]


def cost_of(args) -> set[str]:
    """The markers a started process needs: none for a tool (git, ruff, nvidia-smi ...)."""
    argv = _argv(args)
    if not argv:
        return set()
    exe = Path(argv[0]).name
    ours = exe.startswith("python") or exe in ("sage-ft-tui", "torchrun", "transformers")  # not ruff, git, ...
    if exe == "tmux":
        return {"tmux", "subprocess"}
    if not ours:
        return set()
    out = {"subprocess"}
    module = argv[argv.index("-m") + 1] if "-m" in argv[:-1] else ""
    script = argv[1] if len(argv) > 1 and not argv[1].startswith("-") else ""
    if module.startswith(TRAINING_MODULES) or "gpu_check" in script:
        out.add("train")
    if module == "sage_ft_tui":  # python -m sage_ft_tui COMMAND ...
        rest = argv[argv.index("-m") + 2 :]
        command = next((a for a in rest if not a.startswith("-")), "")
        helping = "--help" in rest or "-h" in rest
        if not helping and (command in TRAINING_COMMANDS or (command == "start" and "--queue" in rest)):
            out.add("train")
    return out


def check_started(nodeid: str, marks: set[str], started: list) -> str | None:
    """None when the test's markers cover every process it started; else the one-line reason."""
    for args in started:
        missing = cost_of(args) - marks
        if missing:
            shown = " ".join(_argv(args))[:160]
            return (
                f"{nodeid} started `{shown}` but is not marked {', '.join(sorted(missing))}: add the marker "
                "(@pytest.mark.NAME, or its file/fixture in tests/markers.py)"
            )
    return None
