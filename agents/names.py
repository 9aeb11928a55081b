"""Index constants declared by a tuple of names, checked at import.

The kernels index state rows, tallies, fields and systemic inputs with integer constants
(numba bakes them in), and Python code reads the same rows by name. Each list is declared as
one tuple of names, and its constants unpack `range(len(names))`; `check_indices` then checks
that every constant with the list's prefix is the index of its own name, so that a list and its
constants cannot drift apart.
"""


def check_indices(prefix: str, names: tuple[str, ...], namespace: dict) -> None:
    """Raise if the constants `prefix + NAME` in `namespace` are not exactly 0..len(names)-1
    in the order of `names` (name 'rankl' <-> constant prefix + 'RANKL')."""
    expected = {prefix + name.upper(): i for i, name in enumerate(names)}
    found = {k: v for k, v in namespace.items() if k.startswith(prefix) and k.isupper()
             and isinstance(v, int)}
    if found != expected:
        wrong = sorted(set(found.items()) ^ set(expected.items()))
        raise ImportError(f"index constants {prefix}* do not match their names: {wrong}")
