"""clbench's strategies. A strategy is one module here that registers its class with
``@STRATEGIES.register("name")`` and is named in ``BUILTIN``; a strategy in another package is
one module plus an entry point in the group ``clbench.strategies`` (README: Extending).

``tests/test_registry_spec.py`` fails for a module in neither ``BUILTIN`` nor ``SUPPORT``."""

# The modules that register strategies, imported on the registry's first lookup.
BUILTIN = ("naive", "joint", "ewc", "replay", "generative_replay", "pnn", "net2net",
           "avalanche_baselines")
# The modules that register nothing: the strategy contract and shared helpers.
SUPPORT = ("base", "avalanche_adapter")
