"""Kernel side: the run session, cell hooks, parameters, environment, GPU sampler, sinks."""
