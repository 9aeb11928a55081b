"""The simulated bone section: geometry, vessels, and the matrix with its mineralization.

Geometry. A 2D section (rows, cols) of square grid cells of side `spacing_um` [um]. Trabecular
bone is a two-level cut of random fields (Roberts & Teubner 1995 style): plates are the band
|g1| < t1 of an anisotropic field (struts elongated along the rows axis, the vertebral
cranio-caudal direction), rods the band |g2| < t2 of a finer isotropic field kept only where a
third field is high (rods are broken up in a section). Parts thinner than `min_thickness` (the
tapered tips and waists a level cut leaves) are removed by a morphological opening. Thresholds
are solved for the target BV/TV and rod share (tissue.toml). Every field is a sum of random Fourier modes evaluated in
physical coordinates, so one `geometry_seed` gives the same bone at any grid spacing. For
site = 'hip' a cortical shell of `cortical_thickness` lines the section with Haversian canals
(each a vessel in a small marrow space). Marrow vessels are Poisson points in the marrow.

Matrix. Each grid cell holds volume fractions [0..1] of the cell: `osteoid` (unmineralized
collagen) and `matrix` (mature, mineralizing collagen); bone = osteoid + matrix. Mineral is
counted in units of a fully mineralized cell and held in two pools, `mineral_p` (primary: fast,
to `primary_fraction` of the matrix) and `mineral_s` (secondary: slow, to the rest). Osteoid
matures into matrix with the osteoid maturation time; mineralization follows first-order
kinetics toward each pool's share of the matrix, exact over a step (`mineralize`). BMD is the
mineral content, so the remodeling space (resorbed, not yet refilled) and the mineralization
lag of new bone both show in BMD as in patients.
"""

from dataclasses import dataclass

import numpy as np
from numba import njit, prange
from scipy import ndimage
from scipy.special import ndtr

from bonesim.model.parameters import value

SITES = ("spine", "hip")


@njit(parallel=True, cache=True)
def _modes_field(rows, cols, spacing, kx, ky, phase, out):
    """out[i, j] = sqrt(2/n) sum_m cos(kx_m x_j + ky_m y_i + phase_m) at cell centres [um]."""
    n = kx.size
    norm = np.sqrt(2.0 / n)
    for i in prange(rows):
        y = (i + 0.5) * spacing
        for j in range(cols):
            x = (j + 0.5) * spacing
            s = 0.0
            for m in range(n):
                s += np.cos(kx[m] * x + ky[m] * y + phase[m])
            out[i, j] = norm * s


def random_field(shape, spacing_um, wavelength_um, anisotropy, n_modes, rng) -> np.ndarray:
    """A unit-variance smooth Gaussian random field (rows, cols) from `n_modes` random modes.

    Wavenumbers scatter 15% around 2 pi / wavelength [1/um], directions are uniform; anisotropy
    a > 1 stretches structures along the rows axis (k_col x sqrt(a), k_row / sqrt(a)).
    """
    k = 2 * np.pi / wavelength_um * (1 + 0.15 * rng.standard_normal(n_modes))
    theta = rng.uniform(0, 2 * np.pi, n_modes)
    kx = k * np.cos(theta) * np.sqrt(anisotropy)
    ky = k * np.sin(theta) / np.sqrt(anisotropy)
    phase = rng.uniform(0, 2 * np.pi, n_modes)
    out = np.empty(shape)
    _modes_field(shape[0], shape[1], float(spacing_um), kx, ky, phase, out)
    return out


def _cut(values: np.ndarray, fraction: float) -> float:
    """Threshold t with mean(values < t) = fraction."""
    return float(np.quantile(values, fraction)) if fraction > 0 else -np.inf


def trabecular_mask(shape, spacing_um, seed: int) -> np.ndarray:
    """Bone mask (rows, cols) of a spine-like trabecular section, BV/TV from tissue.toml."""
    rng = np.random.default_rng(seed)
    n_modes = int(value("tissue.geometry.n_modes"))
    plates = np.abs(random_field(shape, spacing_um, value("tissue.geometry.plate_wavelength"),
                                 value("tissue.geometry.plate_anisotropy"), n_modes, rng))
    rods = np.abs(random_field(shape, spacing_um, value("tissue.geometry.rod_wavelength"),
                               1.0, n_modes, rng))
    keep = random_field(shape, spacing_um, value("tissue.geometry.rod_wavelength"), 1.0,
                        n_modes, rng)
    bv_tv = value("tissue.geometry.bv_tv")
    kept = keep > np.quantile(keep, 1 - value("tissue.geometry.rod_keep"))
    rod_area = value("tissue.geometry.rod_share") * bv_tv
    rod_mask = kept & (rods < _cut(rods[kept], min(1.0, rod_area / kept.mean())))
    # plate threshold by bisection on the area of the union without its thin parts
    disk = _disk(value("tissue.geometry.min_thickness") / 2 / spacing_um)
    lo, hi = 0.0, float(plates.max())
    for _ in range(50):
        mid = 0.5 * (lo + hi)
        if _without_thin_parts((plates < mid) | rod_mask, disk).mean() < bv_tv:
            lo = mid
        else:
            hi = mid
    return _without_thin_parts((plates < hi) | rod_mask, disk)


def _disk(radius: float) -> np.ndarray:
    """Boolean disk of `radius` grid cells (a structuring element)."""
    n = int(radius)
    y, x = np.ogrid[-n:n + 1, -n:n + 1]
    return x * x + y * y <= radius * radius


def _without_thin_parts(mask: np.ndarray, disk: np.ndarray) -> np.ndarray:
    """`mask` opened by `disk` (erosion, then dilation): the parts narrower than the disk
    (the tapered tips and waists a level cut of a random field leaves) are removed; bone
    running out of the section is not eroded from the border."""
    core = ndimage.binary_erosion(mask, structure=disk, border_value=1)
    return ndimage.binary_dilation(core, structure=disk) & mask


def cortical_shell(shape, spacing_um, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(shell, canals): the cortical shell mask along the section's border and the Haversian
    canal centres inside it (a bool mask of canal lumens), both (rows, cols)."""
    rows, cols = shape
    thick = value("tissue.geometry.cortical_thickness") / spacing_um
    i, j = np.mgrid[0:rows, 0:cols]
    edge = np.minimum(np.minimum(i + 0.5, rows - i - 0.5), np.minimum(j + 0.5, cols - j - 0.5))
    shell = edge < thick
    rng = np.random.default_rng(seed + 7919)
    area_mm2 = shell.sum() * (spacing_um / 1000) ** 2
    n = rng.poisson(value("tissue.geometry.haversian_density") * area_mm2)
    radius = max(value("tissue.geometry.haversian_radius"), spacing_um / 2)
    canals = np.zeros(shape, dtype=bool)
    size = np.array([rows, cols]) * spacing_um
    for y, x in rng.uniform(0, 1, (n, 2)) * size:
        r, c = int(y / spacing_um), int(x / spacing_um)
        if shell[r, c] and edge[r, c] > radius / spacing_um + 1:
            canals |= ((i + 0.5) * spacing_um - y) ** 2 + ((j + 0.5) * spacing_um - x) ** 2 <= radius**2
    return shell, canals


def place_vessels(marrow: np.ndarray, spacing_um: float, seed: int, density_per_mm2: float,
                  min_bone_um: float) -> np.ndarray:
    """Vessel mask: Poisson points (physical coordinates) in the marrow, each a disc of
    tissue.vessels.radius (at least one cell), dropped if closer than min_bone_um to bone."""
    rows, cols = marrow.shape
    rng = np.random.default_rng(seed + 104729)
    area_mm2 = rows * cols * (spacing_um / 1000) ** 2
    n = rng.poisson(density_per_mm2 * area_mm2)
    distance = ndimage.distance_transform_edt(marrow) * spacing_um
    radius = value("tissue.vessels.radius")
    vessel = np.zeros(marrow.shape, dtype=bool)
    reach = int(np.ceil(radius / spacing_um))
    for y, x in rng.uniform(0, 1, (n, 2)) * np.array([rows, cols]) * spacing_um:
        r, c = min(int(y / spacing_um), rows - 1), min(int(x / spacing_um), cols - 1)
        if not marrow[r, c] or distance[r, c] < min_bone_um + spacing_um / 2:
            continue
        vessel[r, c] = True
        for dr in range(-reach, reach + 1):
            for dc in range(-reach, reach + 1):
                rr, cc = r + dr, c + dc
                if 0 <= rr < rows and 0 <= cc < cols and marrow[rr, cc] and \
                        ((rr + 0.5) * spacing_um - y) ** 2 + ((cc + 0.5) * spacing_um - x) ** 2 <= radius**2:
                    vessel[rr, cc] = True
    return vessel


@njit(cache=True)
def mineralize(osteoid, matrix, mineral_p, mineral_s, dt, omt, primary_fraction,
               primary_rate, secondary_rate):
    """Advance matrix maturation and mineralization over dt [day], in place, exactly.

    omt: osteoid maturation time [day]; primary_rate, secondary_rate [1/day] (primary_rate
    already scaled by the mineral supply). Osteoid matures into matrix (first order); the
    primary pool relaxes to primary_fraction x matrix, the secondary to the rest.
    """
    f_o = 1.0 - np.exp(-dt / omt)
    f_p = 1.0 - np.exp(-primary_rate * dt)
    f_s = 1.0 - np.exp(-secondary_rate * dt)
    rows, cols = osteoid.shape
    for i in range(rows):
        for j in range(cols):
            o = osteoid[i, j]
            if o > 0.0:
                moved = o * f_o
                osteoid[i, j] = o - moved
                matrix[i, j] += moved
            m = matrix[i, j]
            if m > 0.0:
                mineral_p[i, j] += (primary_fraction * m - mineral_p[i, j]) * f_p
                mineral_s[i, j] += ((1.0 - primary_fraction) * m - mineral_s[i, j]) * f_s


POOLS = ("osteoid", "matrix", "mineral_p", "mineral_s")


@dataclass
class Tissue:
    """State of the section. Arrays are (rows, cols); fractions of a grid cell's volume.

    pools (4, rows, cols), one C-contiguous array whose planes are (views): osteoid, matrix
    [0..1]: unmineralized and mature collagen; mineral_p, mineral_s [0..1 of a fully
    mineralized cell]: primary and secondary mineral. vessel: vessel lumen; cortical:
    the cortical compartment (hip); site_bmu: id of the BMU that eroded the cell (-1: not on
    an eroded, unrefilled site); eroded_day [day]: when it was eroded; density0: the local bone
    density the tissue is adapted to (the habitual-load set point of the mechanostat): the
    density as built, fixed (BoneModel._mechanics); age_quantile:
    the quantile of each cell's tissue age (`age_quantiles`, `set_age`).
    """

    spacing_um: float
    site: str
    pools: np.ndarray
    vessel: np.ndarray
    cortical: np.ndarray
    site_bmu: np.ndarray
    eroded_day: np.ndarray
    density0: np.ndarray
    age_quantile: np.ndarray

    @property
    def shape(self) -> tuple[int, int]:
        return self.pools.shape[1:]

    @property
    def osteoid(self) -> np.ndarray:
        return self.pools[0]

    @property
    def matrix(self) -> np.ndarray:
        return self.pools[1]

    @property
    def mineral_p(self) -> np.ndarray:
        return self.pools[2]

    @property
    def mineral_s(self) -> np.ndarray:
        return self.pools[3]

    @property
    def bone(self) -> np.ndarray:
        """Bone volume fraction of each cell, osteoid + matrix [0..1]."""
        return self.osteoid + self.matrix

    @property
    def mineral(self) -> np.ndarray:
        """Mineral content of each cell [fully mineralized cell = 1]."""
        return self.mineral_p + self.mineral_s

    def matrix_mask(self) -> np.ndarray:
        """Cells that are bone for transport (bone fraction >= 1/2)."""
        return self.bone >= 0.5

    def local_density(self) -> np.ndarray:
        """Bone fraction averaged over a disc-like box of tissue.mechanics.density_radius."""
        size = max(1, int(round(2 * value("tissue.mechanics.density_radius") / self.spacing_um)) | 1)
        return ndimage.uniform_filter(self.bone, size=size, mode="reflect")

    def set_age(self, cells: np.ndarray, turnover_per_yr: float, older_than_days: float) -> None:
        """Mineralize the mature matrix of `cells` (bool mask) as bone of the age a steady state
        of `turnover_per_yr` gives, older than `older_than_days`: under random renewal at rate
        k the tissue age is exponential with rate k (memoryless, so older than T it is T plus
        one), drawn from `age_quantile`. Primary mineral complete, secondary after its time
        constant."""
        age_days = older_than_days - np.log1p(-self.age_quantile[cells]) / turnover_per_yr * 365.25
        f_p = value("tissue.matrix.primary_fraction")
        matrix = self.matrix[cells]
        self.mineral_p[cells] = matrix * f_p
        self.mineral_s[cells] = matrix * (1 - f_p) * -np.expm1(-age_days / value("tissue.matrix.secondary_time"))

    def mineralize(self, dt: float, supply: float) -> None:
        """Mature and mineralize over dt [day]; supply [0..] scales the primary rate
        (calcium and vitamin D availability, 1 = adequate)."""
        mineralize(self.osteoid, self.matrix, self.mineral_p, self.mineral_s, float(dt),
                   value("tissue.matrix.osteoid_maturation"), value("tissue.matrix.primary_fraction"),
                   supply / value("tissue.matrix.primary_time"),
                   1.0 / value("tissue.matrix.secondary_time"))


def mineral_supply(calcium_rel: float, vitamin_d_ng_ml: float) -> float:
    """Relative mineral supply for primary mineralization, 0..1: calcium_rel x the vitamin D
    saturation relative to its value at 30 ng/mL, capped at 1 (adequate calcium and 30 ng/mL
    25(OH)D): more calcium or vitamin D than enough does not mineralize osteoid faster, the
    osteoblasts' matrix vesicles and collagen set the pace (Boivin & Meunier 2002 [L])."""
    half = value("tissue.matrix.vitamin_d_half")
    saturation = (vitamin_d_ng_ml / (vitamin_d_ng_ml + half)) / (30.0 / (30.0 + half))
    return min(1.0, max(0.0, calcium_rel) * saturation)


def build_tissue(shape, spacing_um: float, site: str, geometry_seed: int) -> Tissue:
    """Generate the section for `site` ('spine' or 'hip') from `geometry_seed`."""
    if site not in SITES:
        raise ValueError(f"site must be one of {SITES}, got {site!r}")
    shape = (int(shape[0]), int(shape[1]))
    bone = trabecular_mask(shape, spacing_um, geometry_seed)
    cortical = np.zeros(shape, dtype=bool)
    canals = np.zeros(shape, dtype=bool)
    if site == "hip":
        cortical, canals = cortical_shell(shape, spacing_um, geometry_seed)
        bone = (bone | cortical) & ~canals
    vessel = place_vessels(~bone, spacing_um, geometry_seed, value("tissue.vessels.density"),
                           value("tissue.vessels.min_bone_distance"))
    vessel |= canals & (ndimage.distance_transform_edt(canals) * spacing_um
                        >= value("tissue.geometry.haversian_radius") / 2)
    if site == "hip":  # every canal has its vessel, even a one-cell canal
        labels, n = ndimage.label(canals)
        for k in range(1, n + 1):
            cells = np.argwhere(labels == k)
            r, c = cells[len(cells) // 2]
            vessel[r, c] = True
    pools = np.zeros((4, *shape))
    pools[1] = bone
    tissue = Tissue(spacing_um=float(spacing_um), site=site, pools=pools, vessel=vessel, cortical=cortical,
                    site_bmu=np.full(shape, -1, dtype=np.int64), eroded_day=np.zeros(shape),
                    density0=np.zeros(shape), age_quantile=age_quantiles(shape, spacing_um, geometry_seed))
    tissue.set_age(bone, value("tissue.matrix.initial_turnover"), 0.0)
    tissue.density0[:] = tissue.local_density()
    return tissue


def age_quantiles(shape, spacing_um: float, geometry_seed: int) -> np.ndarray:
    """Uniform quantiles in [0, 1) of each grid cell's tissue age, correlated over a packet
    size (cells of one bone structural unit are of one age), the same for a geometry seed."""
    rng = np.random.default_rng(geometry_seed + 15485863)
    g = random_field(shape, spacing_um, 2 * value("tissue.matrix.packet_size"), 1.0,
                     int(value("tissue.geometry.n_modes")), rng)
    return np.clip(ndtr(g), 0, 1 - 1e-12)
