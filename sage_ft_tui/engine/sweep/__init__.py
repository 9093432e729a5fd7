"""Hyperparameter search (`sage-ft-tui sweep`): Optuna's TPE sampler and median pruning over
normal runs, each created by `runs.start.start_run`, run through the queue, and tagged with
its sweep. Optuna is imported only by the driver process and the CLI's sweep command."""
