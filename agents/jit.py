"""The numba decorators of the cell rules: `rule` (a compiled function) and `inline_rule` (one
inlined into its callers), both cached and compiled without numba's reference counting.

A numba function counts references to every array it is handed, at every call, inlined or
not. The cell rules take ~25 arrays and run once per cell per step, so the counting would be
most of their cost (docs/design.md, decision 2, gives the measurement). The rules never allocate an array nor return one: they
read and write arrays that the model owns and keeps alive over the whole call. So they are
compiled without the runtime (numba's `_nrt=False`): an allocation in a rule is refused at
compile time, not left to leak.
"""

from numba import njit

rule = njit(cache=True, _nrt=False)
inline_rule = njit(cache=True, inline="always", _nrt=False)
