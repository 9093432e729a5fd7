"""Training: the trainer (TRL + peft) and the detached worker process that runs it."""
