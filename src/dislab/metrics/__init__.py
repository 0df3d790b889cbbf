"""Metrics: one pure function per file (``name(data, represent, rng, **knobs) -> dict``), with a
public array kernel ``name_on_codes(codes, factors, **knobs)`` where the metric scores a fixed sample."""
