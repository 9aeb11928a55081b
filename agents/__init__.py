"""The cells: osteoclast and osteoblast lineages, osteocytes, lining cells (Mesa agents) and
their numba kernels over structure-of-arrays state.

numba caches each compiled kernel keyed on its own source file only, but the kernels here bake
in integer constants from sibling modules (parameter indices in rates.py, state rows in
population.py, ...). So that an edit to any of these files never leaves a stale compiled
kernel, the numba cache of this package is cleared whenever the package's sources change.
"""

import hashlib
from pathlib import Path


def _clear_stale_numba_cache() -> None:
    here = Path(__file__).parent
    digest = hashlib.sha256(b"".join(p.read_bytes() for p in sorted(here.glob("*.py")))).hexdigest()
    cache = here / "__pycache__"
    stamp = cache / "numba_sources.sha256"
    try:
        if stamp.read_text() == digest:
            return
    except OSError:
        pass
    try:
        cache.mkdir(exist_ok=True)
        for path in list(cache.glob("*.nbi")) + list(cache.glob("*.nbc")):
            path.unlink(missing_ok=True)
        stamp.write_text(digest)
    except OSError:      # read-only install: numba then falls back to its own cache checks
        pass


_clear_stale_numba_cache()
