"""clbench: a continual-learning benchmark harness.

The package is layered, and imports only point down (``tests/test_layers.py`` enforces it):

1. **core** (:data:`CORE`): errors, parameters, the registry, seeding, budgets, run specs,
   component versions, the result schema and store, metrics, the experience types that
   scenarios hand strategies, and the member-batched models. It imports nothing above it.
2. **components**: ``clbench.scenarios``, ``clbench.strategies``, ``clbench.reports``,
   ``clbench.trackers``. Each
   imports the core and itself, never one another, and lists its own modules (``BUILTIN``,
   ``SUPPORT`` in its ``__init__``).
3. **application** (:data:`APPLICATION`), which ties the components together: the
   subpackage ``clbench.app`` (the runner, the executors, run orchestration, suites, tuning)
   and, at the top, its public faces: the API facade, the command line and the reference runs.

Every module of this folder is named in exactly one of the two lists below: a new module is
refused by ``tests/test_layers.py`` until it is placed (no module is core by default).

Components reach each other only through the registries, by name.
Importing clbench runs nothing: registries load their modules on first use.
"""

# Imports nothing above it: no component, no application module.
CORE = ("budget", "errors", "experience", "files", "identity", "metrics", "migrations", "models",
        "numbers", "params", "records", "registry", "results", "schema", "seeding", "spec",
        "versions")
# Ties the components together; may import the core and every component.
APPLICATION = ("app", "reference", "reproducibility", "searches", "api", "cli")
