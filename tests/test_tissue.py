"""The tissue section: geometry targets, resolution independence, mineralization kinetics."""

import dataclasses

import numpy as np
import pytest

from bonesim.model.parameters import value
from bonesim.model.tissue import build_tissue, mineral_supply, mineralize, random_field


@pytest.fixture(scope="module")
def spine():
    return build_tissue((128, 128), 10.0, "spine", 3)


def test_bv_tv_hits_the_target(spine):
    assert spine.bone.mean() == pytest.approx(value("tissue.geometry.bv_tv"), abs=0.005)


def test_trabecular_thickness_is_spine_like():
    bone = build_tissue((256, 256), 10.0, "spine", 1).matrix_mask()
    faces = np.count_nonzero(bone[1:] != bone[:-1]) + np.count_nonzero(bone[:, 1:] != bone[:, :-1])
    thickness = 2 * bone.sum() / (faces / (4 / np.pi)) * 10.0   # staircase-corrected, um
    assert 80.0 < thickness < 200.0   # Tb.Th 0.1-0.2 mm [L]


def test_generated_trabeculae_have_no_parts_thinner_than_min_thickness():
    """Every bone cell of the section lies in a disk of diameter min_thickness inside the bone
    (the mask is open; bone running out of the section counts as continuing)."""
    from scipy import ndimage
    from bonesim.model.tissue import trabecular_mask
    bone = trabecular_mask((128, 128), 10.0, 1)
    radius = value("tissue.geometry.min_thickness") / 2 / 10.0
    inside = ndimage.distance_transform_edt(np.pad(bone, 1, constant_values=True))[1:-1, 1:-1]
    centres = inside > radius
    n = int(radius)
    y, x = np.ogrid[-n:n + 1, -n:n + 1]
    covered = ndimage.binary_dilation(centres, structure=x * x + y * y <= radius * radius)
    assert (covered | ~bone).all()


def test_plate_field_is_elongated_along_the_rows_axis():
    # over many wavelengths the field varies sqrt(anisotropy) times faster across columns
    a = value("tissue.geometry.plate_anisotropy")
    ratios = []
    for seed in range(4):
        g = random_field((256, 256), 10.0, 400.0, a, 400, np.random.default_rng(seed))
        ratios.append(np.abs(np.diff(g, axis=1)).mean() / np.abs(np.diff(g, axis=0)).mean())
    assert np.mean(ratios) == pytest.approx(np.sqrt(a), rel=0.15)


def test_same_seed_same_bone_at_half_spacing():
    coarse = build_tissue((128, 128), 10.0, "spine", 5).matrix_mask()
    fine = build_tissue((256, 256), 5.0, "spine", 5).matrix_mask()
    down = fine.reshape(128, 2, 128, 2).mean(axis=(1, 3)) >= 0.5
    assert (down == coarse).mean() > 0.95


def test_different_seeds_differ(spine):
    other = build_tissue((128, 128), 10.0, "spine", 4)
    assert (other.matrix_mask() != spine.matrix_mask()).mean() > 0.1


def test_hip_has_cortical_shell_with_canals():
    hip = build_tissue((128, 128), 10.0, "hip", 1)
    thick = int(value("tissue.geometry.cortical_thickness") / 10.0)
    assert hip.cortical[:thick - 1, :].all() and hip.cortical[:, -thick + 1:].all()
    assert hip.bone[hip.cortical].mean() > 0.9          # dense cortex with a few canals
    assert hip.vessel[hip.cortical].any()               # every canal carries a vessel
    assert hip.bone.mean() > build_tissue((128, 128), 10.0, "spine", 1).bone.mean()


def test_vessels_lie_in_marrow_away_from_bone(spine):
    assert spine.vessel.any()
    assert not (spine.vessel & spine.matrix_mask()).any()


def test_initial_mineral_reflects_tissue_age(spine):
    bone = spine.matrix_mask()
    degree = spine.mineral[bone] / spine.matrix[bone]
    f_p = value("tissue.matrix.primary_fraction")
    assert degree.min() >= f_p - 1e-12 and degree.max() <= 1.0 + 1e-12
    k_s = 365.25 / value("tissue.matrix.secondary_time")
    turnover = value("tissue.matrix.initial_turnover")
    expected = f_p + (1 - f_p) * k_s / (k_s + turnover)   # mean over exponential ages
    assert degree.mean() == pytest.approx(expected, abs=0.05)


def test_mineralization_is_exact_first_order():
    osteoid = np.full((1, 1), 1.0)
    matrix = np.zeros((1, 1))
    mp, ms = np.zeros((1, 1)), np.zeros((1, 1))
    omt = 15.0
    for _ in range(30):
        mineralize(osteoid, matrix, mp, ms, 1.0, omt, 0.65, 1 / 7.0, 1 / 730.0)
    assert osteoid[0, 0] == pytest.approx(np.exp(-30 / omt), rel=1e-12)
    assert osteoid[0, 0] + matrix[0, 0] == pytest.approx(1.0, rel=1e-12)   # collagen conserved
    # primary mineral well under way after a month, secondary barely begun
    assert 0.3 < mp[0, 0] < 0.65 and ms[0, 0] < 0.02


def test_mineralization_does_not_depend_on_step_size():
    def run(dt, n):
        pools = [np.full((1, 1), 1.0), np.zeros((1, 1)), np.zeros((1, 1)), np.zeros((1, 1))]
        for _ in range(n):
            mineralize(*pools, dt, 15.0, 0.65, 1 / 7.0, 1 / 730.0)
        return pools[2][0, 0] + pools[3][0, 0]
    assert run(1.0, 200) == pytest.approx(run(0.25, 800), rel=0.01)


def test_mineral_supply_is_one_when_adequate_and_falls_in_deficiency():
    assert mineral_supply(1.0, 30.0) == pytest.approx(1.0)
    assert mineral_supply(1.0, 5.0) < 0.6
    assert mineral_supply(0.5, 30.0) == pytest.approx(0.5)
    # more than enough does not mineralize faster
    assert mineral_supply(2.2, 30.0) == 1.0 and mineral_supply(1.0, 80.0) == 1.0


@pytest.mark.parametrize("turnover, older", [(0.25, 0.0), (0.6, 400.0)])
def test_set_age_gives_the_mineral_of_a_steady_state(spine, turnover, older):
    """Bone older than T at a steady turnover k is T plus an Exp(k) age: its mean secondary
    mineralization degree is 1 - exp(-T/tau) k / (k + 1/tau)."""
    tissue = dataclasses.replace(spine, pools=spine.pools.copy())
    bone = tissue.matrix_mask()
    tissue.set_age(bone, turnover, older)
    f_p = value("tissue.matrix.primary_fraction")
    tau = value("tissue.matrix.secondary_time") / 365.25
    secondary = 1 - np.exp(-older / 365.25 / tau) * turnover / (turnover + 1 / tau)
    degree = tissue.mineral[bone] / tissue.matrix[bone]
    assert degree.mean() == pytest.approx(f_p + (1 - f_p) * secondary, abs=0.03)


def test_unknown_site_is_refused():
    with pytest.raises(ValueError, match="site"):
        build_tissue((32, 32), 10.0, "skull", 1)
