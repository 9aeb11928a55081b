"""Receptor pharmacodynamics: occupancy functions of ligand concentrations.

Every cellular response to a signal goes through one of these functions, with its EC50 and
Hill coefficient from model/parameters/cells.toml (section `receptors`). Concentrations are in
the field's units (pM for cytokines, serum units for hormones); occupancies are in [0, 1].
"""

from numba import njit


@njit(cache=True, inline="always")
def hill(c, ec50, n):
    """Fractional occupancy c^n / (ec50^n + c^n) of a receptor by an agonist at c (>= 0)."""
    if c <= 0.0:
        return 0.0
    x = (c / ec50) ** n
    return x / (1.0 + x)


@njit(cache=True, inline="always")
def competitive(c1, ec1, c2, ec2, n):
    """Occupancy of one receptor by two full agonists competing for it (e.g. progesterone and
    MPA at PR): x = c1/ec1 + c2/ec2 (each in units of its own EC50), occupancy x^n / (1 + x^n)."""
    x = max(c1, 0.0) / ec1 + max(c2, 0.0) / ec2
    if x <= 0.0:
        return 0.0
    x = x**n
    return x / (1.0 + x)


@njit(cache=True, inline="always")
def inflammation(il1, il6, tnf, ec_il1, ec_il6, ec_tnf):
    """Inflammatory tone [0..1]: mean occupancy of the IL-1, IL-6 and TNF-alpha receptors."""
    return (hill(il1, ec_il1, 1.0) + hill(il6, ec_il6, 1.0) + hill(tnf, ec_tnf, 1.0)) / 3.0
