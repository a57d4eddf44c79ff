"""clbench: a continual-learning benchmark harness.

The package is layered, and imports only point down (``tests/test_layers.py`` enforces it):

1. **core** (this package's modules other than those below): errors, parameters, the registry,
   seeding, budgets, run specs, component versions, the result schema and store, metrics, the
   experience types that scenarios hand strategies, and the member-batched models. It imports
   nothing above it.
2. **components**: ``clbench.scenarios``, ``clbench.strategies``, ``clbench.reports``. Each
   imports the core and itself, never one another.
3. **application**: ``clbench.runner``, ``clbench.executors`` (local, Ray),
   ``clbench.orchestrate`` (locks, executor, store),
   ``clbench.suite``, ``clbench.reference``, ``clbench.api``, ``clbench.tune`` and
   ``clbench.cli``, which tie the components together.

Components reach each other only through the registry (``clbench.registry``), by name.
Importing clbench runs nothing: registries load their modules on first use.
"""
