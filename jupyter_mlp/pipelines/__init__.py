"""Pipelines: a `.mlpipe` file whose stages rerun pinned runs, wired output -> parameter.

spec          the `.mlpipe` format: load, dump, references, dependencies, version hash
validate      clear messages for what cannot run (unknown names, cycles, types, templates)
cache         a stage's cache key
dag           the DAG runner (submit, Driver, cancel)
sweep_stage   a stage's "sweep" block: checked as `jupyter mlp sweep` checks, run by the Driver
driver        `python -m jupyter_mlp.pipelines.driver ID`: a detached process driving one run
cli_commands  `jupyter mlp pipeline ...`
"""
