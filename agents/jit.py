"""The numba decorators of the cell rules: `rule` (a compiled function) and `inline_rule` (one
inlined into its callers), both cached and compiled without numba's reference counting.

A numba function counts references to every array it is handed, at every call, inlined or
not. The cell rules take ~25 arrays and run once per cell per step, so the counting was most
of their cost: a call of `step_cell` for a free slot, which only returns, cost 0.34 us, and
0.01 us without; the whole cell loop went 3.2 -> 1.4 ms (default 256^2 model after 30 days,
5522 slots, same results to the bit). The rules never allocate an array nor return one: they
read and write arrays that the model owns and keeps alive over the whole call. So they are
compiled without the runtime (numba's `_nrt=False`): an allocation in a rule is refused at
compile time, not left to leak.
"""

from numba import njit

rule = njit(cache=True, _nrt=False)
inline_rule = njit(cache=True, inline="always", _nrt=False)
