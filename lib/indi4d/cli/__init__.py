"""The ``indi4d`` command line.

Sub-commands (a contract other work relies on)::

    indi4d simulate OUT_DIR [--preset tiny|default|paper] [--seed N] [--cached]
    indi4d register LQ HQ OUT_DIR [--meta meta.json] [--preset P]
    indi4d train PAIRS_DIR MODEL_DIR [--preset P] [--epochs E] [--max-minutes M] [--restart]
    indi4d enhance IN OUT --model MODEL_DIR [--steps N]
    indi4d evaluate PRED TRUTH_OR_HQ [--labels LABELS] --out metrics.json
    indi4d fetch [NAME ...]

Modules: ``main`` (parser, exit status), ``common`` (help layout, notices,
messages), one module per command group: ``data_commands`` (simulate, fetch),
``register_command``, ``model_commands`` (train, enhance), ``evaluate_command``.
Heavy imports (TensorFlow, spam) happen inside each command so ``indi4d --help``
stays fast.
"""

from .main import build_parser, main

__all__ = ["build_parser", "main"]
