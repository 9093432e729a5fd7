"""The parts of bench/gpu_check.py: model/data building, per-phase time budgets, the
training phases through the real detached worker, their figures, the headless monitor,
and the summary/JSON report."""
