"""Parameter presets shared by the CLI, the chapters and the tests.

Every module that has tunable sizes defines a ``PRESETS`` dict with (at least)
the keys ``"tiny"`` (tests and CI: seconds), ``"default"`` (the book on two
CPU cores) and, where it makes sense, ``"paper"`` (the paper's sizes, for a
GPU). :func:`resolve` picks one and applies overrides.

``"workshop"`` is the default book made small enough for a class on laptops
(about ten minutes for the whole book): it is ``"default"`` wherever a module
does not define it (:data:`FALLBACK`), so only the modules whose sizes or
budgets change (the simulated sample, the training that is replaced by the
published weights, ...) name it.
"""

import copy

PRESET_NAMES = ("tiny", "workshop", "default", "paper")

#: A preset a module does not define resolves to this one.
FALLBACK = {"workshop": "default"}


def preset_entry(presets, name):
    """The entry of ``presets`` for ``name``, following :data:`FALLBACK` (not a copy)."""
    if name not in presets and FALLBACK.get(name) in presets:
        name = FALLBACK[name]
    if name not in presets:
        raise ValueError(f"unknown preset {name!r}; expected one of {sorted(presets)}")
    return presets[name]


def resolve(presets, name, **overrides):
    """Return a copy of ``presets[name]`` updated with the non-None overrides.

    Parameters
    ----------
    presets : dict
        Mapping preset name -> dict of parameters.
    name : str
        Preset name; one the module does not define follows :data:`FALLBACK`.
    **overrides
        Parameters to replace; ``None`` values are ignored so CLI defaults can
        be passed straight through.

    Raises
    ------
    ValueError
        For an unknown preset name or an unknown parameter.
    """
    params = copy.deepcopy(preset_entry(presets, name))
    for key, value in overrides.items():
        if value is None:
            continue
        if key not in params:
            raise ValueError(f"unknown parameter {key!r} for preset {name!r}; known: {sorted(params)}")
        params[key] = value
    return params
