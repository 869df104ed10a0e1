"""Sweeps: a search over a run's parameters with Optuna's samplers and pruners, every trial an
ordinary job run (a rerun of the template with `sweep_id` set). Optuna is imported only when a
sweep is checked or driven (the `sweeps` extra), never by the kernel side."""
