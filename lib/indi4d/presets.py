"""Parameter presets shared by the CLI, the chapters and the tests.

Every module that has tunable sizes defines a ``PRESETS`` dict with (at least)
the keys ``"tiny"`` (tests and CI: seconds), ``"default"`` (the book on two
CPU cores) and, where it makes sense, ``"paper"`` (the paper's sizes, for a
GPU). :func:`resolve` picks one and applies overrides.
"""

import copy

PRESET_NAMES = ("tiny", "default", "paper")


def resolve(presets, name, **overrides):
    """Return a copy of ``presets[name]`` updated with the non-None overrides.

    Parameters
    ----------
    presets : dict
        Mapping preset name -> dict of parameters.
    name : str
        Preset name.
    **overrides
        Parameters to replace; ``None`` values are ignored so CLI defaults can
        be passed straight through.

    Raises
    ------
    ValueError
        For an unknown preset name or an unknown parameter.
    """
    if name not in presets:
        raise ValueError(f"unknown preset {name!r}; expected one of {sorted(presets)}")
    params = copy.deepcopy(presets[name])
    for key, value in overrides.items():
        if value is None:
            continue
        if key not in params:
            raise ValueError(f"unknown parameter {key!r} for preset {name!r}; known: {sorted(params)}")
        params[key] = value
    return params
