"""Physical, metric and gradient checks of the T-block pushing task."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from apg_jax import envs
from apg_jax.envs.tblock import BOXES, S, block_mass_properties
from gradcheck import fd_jacobian, relative_error

ENV = envs.make("tblock")
REACH = ENV.params.half_width - ENV.params.pusher_radius  # action 1 = this target coordinate [m]


def drive(q, targets):
    """Roll ``targets [T, 2]`` (metres) through physics_step; returns the states ``[T, 10]``."""
    step = lambda q, t: (ENV.physics_step(q, t / REACH)[0],) * 2
    return jax.jit(lambda q, ts: jax.lax.scan(step, q, ts)[1])(q, jnp.asarray(targets))


def state(pusher, block, goal=(0.0, 0.0, np.pi / 4), pusher_vel=(0.0, 0.0)):
    return jnp.array([*pusher, *pusher_vel, *block, *goal], dtype=jnp.float32)


def test_mass_properties_of_the_t():
    com, inertia = block_mass_properties(0.1)
    np.testing.assert_allclose(com, [0.0, -(0.0036 * 0.015 + 0.0027 * 0.075) / 0.0063], rtol=1e-12)
    # parallel-axis sum over bar (0.12 x 0.03, 0.0571 kg) and stem (0.03 x 0.09, 0.0429 kg)
    m_bar, m_stem = 0.1 * 0.0036 / 0.0063, 0.1 * 0.0027 / 0.0063
    expected = (m_bar * (0.12**2 + 0.03**2) / 12 + m_bar * (-0.015 - com[1]) ** 2
                + m_stem * (0.03**2 + 0.09**2) / 12 + m_stem * (-0.075 - com[1]) ** 2)
    assert inertia == pytest.approx(expected, rel=1e-12)


def test_unpushed_block_stays_at_rest():
    q = state((0.2, 0.2), (0.0, 0.0, 0.3))  # pusher far away, parked
    traj = drive(q, np.tile([0.2, 0.2], (30, 1)))
    np.testing.assert_allclose(traj[-1, 4:7], q[4:7], atol=1e-7)


def test_centre_push_translates_without_turning_and_off_centre_push_turns():
    centre = drive(state((0.0, 0.05), (0.0, 0.0, 0.0)), np.tile([0.0, -0.04], (12, 1)))
    assert float(centre[-1, 5]) < -0.05  # pushed down by more than 5 cm
    assert abs(float(centre[-1, 4])) < 1e-6 and abs(float(centre[-1, 6])) < 1e-6
    right = drive(state((0.04, 0.05), (0.0, 0.0, 0.0)), np.tile([0.04, -0.04], (12, 1)))
    left = drive(state((-0.04, 0.05), (0.0, 0.0, 0.0)), np.tile([-0.04, -0.04], (12, 1)))
    # pushing down on the right half of the bar turns the block clockwise (negative angle), mirror on left
    assert float(right[-1, 6]) < -0.1
    np.testing.assert_allclose(left[-1, 6], -right[-1, 6], rtol=1e-4)
    np.testing.assert_allclose(left[-1, 4], -right[-1, 4], rtol=1e-3, atol=1e-7)


def test_no_energy_gain_block_moves_no_farther_than_pusher_and_stops():
    q = state((0.0, 0.05), (0.0, 0.0, 0.0))
    pushed = drive(q, np.tile([0.0, -0.02], (10, 1)))
    pusher_advance = 0.05 - float(pushed[-1, 1])
    block_advance = -float(pushed[-1, 5])
    assert 0.0 < block_advance <= pusher_advance
    retreat = drive(pushed[-1], np.tile([0.0, 0.2], (10, 1)))
    assert abs(float(retreat[-1, 5] - pushed[-1, 5])) < 1e-4  # no rebound, no coasting
    # dissipative contact: the work done on the block, F.v + tau.omega = |F|^2/b_t + tau^2/b_r >= 0,
    # shows as the block only ever moving along the push (never back towards the pusher)
    assert np.all(np.diff(np.asarray(pushed[:, 5])) <= 1e-7)


@pytest.mark.parametrize("angle", [0.0, np.pi / 2])
def test_full_speed_pusher_never_tunnels_through_the_block(angle):
    """The target jumps across the block at full action; the pusher must carry the block, not pass it."""
    block = (0.0, 0.06, angle)
    start = (-0.2, 0.0) if angle == 0 else (-0.2, 0.02)
    traj = np.asarray(drive(state(start, block), np.tile([REACH, 0.0], (20, 1))))
    for q in traj:
        local = np.asarray(ENV.world_to_block(jnp.asarray(q[4:7]), jnp.asarray(q[0:2])))
        inside = np.any(np.all(np.abs(local[None] - BOXES[:, :2]) <= BOXES[:, 2:], axis=-1))
        assert not inside, "pusher centre inside the T"
    assert float(traj[-1, 4]) > 0.05  # the block was carried along to the right


def test_walls_hold_block_and_pusher():
    q = state((0.0, -0.05), (0.0, 0.1, 0.0))
    traj = np.asarray(drive(q, np.tile([0.0, REACH], (40, 1))))
    verts = np.asarray(jax.vmap(ENV.vertices)(jnp.asarray(traj[:, 4:7])))
    assert verts[..., 1].max() < ENV.params.half_width + 0.01
    assert traj[:, 1].max() < ENV.params.half_width


def test_coverage_known_values():
    goal = (0.0, 0.0, np.pi / 4)
    at_goal = state((0.2, 0.2), goal)
    assert float(ENV.coverage(at_goal)) == pytest.approx(1.0, abs=1e-6)
    assert float(ENV.success(at_goal)) == 1.0
    assert float(ENV.coverage(state((0.2, 0.2), (0.2, -0.2, 0.0)))) == 0.0
    # shifted by one stem width along the stem (block-frame -y): overlap is the stem's lower two units
    # plus the bar's middle unit: 3 s^2 of 7 s^2
    R = np.array([[np.cos(goal[2]), -np.sin(goal[2])], [np.sin(goal[2]), np.cos(goal[2])]])
    down = R @ np.array([0.0, -S])
    assert float(ENV.coverage(state((0.2, 0.2), (down[0], down[1], goal[2])))) == pytest.approx(3 / 7, abs=1e-6)
    side = R @ np.array([S, 0.0])  # one unit sideways: bars overlap 3 s^2, stems not at all
    assert float(ENV.coverage(state((0.2, 0.2), (side[0], side[1], goal[2])))) == pytest.approx(3 / 7, abs=1e-6)
    half = R @ np.array([S / 2, 0.0])  # half a unit (7.5 cells, off the grid): 3.5 + 1.5 = 5 s^2 of 7
    q_half = state((0.2, 0.2), (half[0], half[1], goal[2]))
    assert float(ENV.coverage(q_half)) == pytest.approx(5 / 7, abs=0.02)
    assert float(ENV.success(q_half)) == 0.0


def test_coverage_grid_error_is_within_stated_bound_for_rotated_poses():
    """Against a 0.25 mm grid (error << 1 %), the 2 mm grid is within 2 % of the area."""
    fine = envs.make("tblock", coverage_cell=0.00025)
    rng = np.random.default_rng(0)
    for _ in range(5):
        pose = (rng.uniform(-0.02, 0.02), rng.uniform(-0.02, 0.02), np.pi / 4 + rng.uniform(-0.4, 0.4))
        q = state((0.2, 0.2), pose)
        assert abs(float(ENV.coverage(q)) - float(fine.coverage(q))) < 0.02


def point_grid_coverage(q, cell=0.002):
    """Coverage by testing every midpoint of the goal T's grid (float64 numpy): the reference for the
    row-by-row count of ``TBlock.coverage``."""
    points = []
    for cx, cy, hw, hh in BOXES:
        xs, ys = np.arange(cx - hw + cell / 2, cx + hw, cell), np.arange(cy - hh + cell / 2, cy + hh, cell)
        points.append(np.stack(np.meshgrid(xs, ys), -1).reshape(-1, 2))
    points = np.concatenate(points)

    def rot(t):
        return np.array([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]])

    local = (q[7:9] + points @ rot(q[9]).T - q[4:6]) @ rot(q[6])
    inside = np.all(np.abs(local[:, None, :] - BOXES[None, :, :2]) <= BOXES[None, :, 2:], axis=-1)
    return np.mean(np.any(inside, axis=-1)), len(points)


def test_coverage_counts_the_same_grid_points_as_testing_each_point():
    rng = np.random.default_rng(1)
    qs = np.zeros((600, 10))
    qs[:, 7:10] = (0.01, -0.02, 0.7)
    spread = np.repeat([[0.001, 0.01], [0.03, 0.5], [0.1, 3.0]], 200, axis=0)  # near, middle, anywhere
    qs[:, 4:6] = qs[:, 7:9] + rng.normal(size=(600, 2)) * spread[:, :1]
    qs[:, 6] = 0.7 + rng.normal(size=600) * spread[:, 1]
    qs[::20, 6] = 0.7 + rng.choice([0.0, np.pi / 2, np.pi, -np.pi / 2], size=30)  # axis-aligned: zero slopes
    counted = np.asarray(jax.vmap(ENV.coverage)(jnp.asarray(qs, jnp.float32)))
    reference = np.array([point_grid_coverage(q)[0] for q in qs])
    assert point_grid_coverage(qs[0])[1] == 1575
    assert np.max(np.abs(counted - reference)) * 1575 < 0.5  # not one point apart
    assert 0.3 < np.mean(reference > 0) < 0.9 and np.mean(reference > 0.95) > 0.05  # the draw covers the range
    assert float(ENV.coverage(jnp.full(10, jnp.nan))) == 0.0


def test_reset_places_pusher_clear_of_block():
    qs = jax.vmap(ENV.reset)(jax.random.split(jax.random.PRNGKey(0), 256)).pipeline_state
    dist = jax.vmap(lambda q: ENV.local_distance(ENV.world_to_block(q[4:7], q[0:2])))(qs)
    assert float(jnp.min(dist)) > ENV.params.pusher_radius
    assert float(jnp.max(jnp.abs(qs[:, 4:6]))) <= ENV.params.block_range


def contact_state():
    """Pusher pressing on the bar's right half, moving; block tilted: a generic state in contact."""
    return jnp.array([0.03, 0.0165, 0.05, -0.3, 0.0, 0.0, 0.1, 0.0, 0.0, np.pi / 4])


def test_distance_known_values_and_closed_form_normal_matches_autodiff():
    """The signed distance at hand-checked points; its closed-form gradient (the contact normal) equals
    autodiff of the distance, and the normal's Jacobian (what the backward pass differentiates) equals the
    distance's Hessian, inside and outside the T (float64)."""
    with jax.enable_x64(True):
        known = {(0.0, 0.05): 0.05, (0.1, -0.015): 0.04, (0.0, -0.15): 0.03,  # above, right of, below
                 (0.0, -0.005): -0.005, (-0.05, -0.015): -0.01}  # inside the bar: depth to the nearest edge
        for x, d in known.items():
            assert float(ENV.local_distance(jnp.array(x, jnp.float64))) == pytest.approx(d, abs=1.5e-3)
        xs = jax.random.uniform(jax.random.PRNGKey(0), (2000, 2), jnp.float64, -0.08, 0.04) - jnp.array([0.0, 0.04])
        dist, grad = jax.vmap(ENV.local_distance_and_gradient)(xs)
        assert 0.2 < float(jnp.mean(dist < 0)) < 0.6  # both sides of the surface sampled
        np.testing.assert_allclose(grad, jax.vmap(jax.grad(ENV.local_distance))(xs), atol=1e-12)
        normal_jacobian = jax.vmap(jax.jacfwd(lambda x: ENV.local_distance_and_gradient(x)[1]))(xs)
        hessian = jax.vmap(jax.hessian(ENV.local_distance))(xs)
        assert relative_error(normal_jacobian, hessian) < 1e-10


def test_gradients_in_contact_match_finite_differences():
    with jax.enable_x64(True):
        q = contact_state().astype(jnp.float64)
        local = ENV.world_to_block(q[4:7], q[0:2])
        assert float(ENV.local_distance(local)) < ENV.params.pusher_radius  # really in contact
        u = jnp.array([0.12, -0.2]) / REACH
        for out in (0, 1):
            f_q = lambda q_: ENV.physics_step(q_, u)[out]
            f_u = lambda u_: ENV.physics_step(q, u_)[out]
            assert relative_error(jax.jacfwd(f_q)(q), fd_jacobian(f_q, q, eps=1e-7)) < 1e-5
            assert relative_error(jax.jacfwd(f_u)(u), fd_jacobian(f_u, u, eps=1e-7)) < 1e-5


def test_rollout_gradient_through_contact_matches_finite_differences():
    with jax.enable_x64(True):
        q0 = contact_state().astype(jnp.float64)
        actions = jnp.tile(jnp.array([0.05, -0.15]) / REACH, (32, 1))
        actions = actions + 0.05 * jax.random.normal(jax.random.PRNGKey(0), actions.shape)

        def ret(a):
            return jnp.sum(jax.lax.scan(lambda q, u: ENV.physics_step(q, u), q0, a)[1])

        traj = drive(q0, actions * REACH)
        assert float(jnp.max(jnp.abs(traj[:, 6] - q0[6]))) > 0.05  # the block really moved
        grad = jax.jit(jax.grad(ret))(actions)
        fd = fd_jacobian(jax.jit(ret), actions, eps=1e-7).reshape(actions.shape)
        assert relative_error(grad, fd) < 1e-5


def test_observation_is_in_the_block_frame():
    """Moving and turning the whole scene (pusher, block, goal) leaves the block-frame features unchanged;
    the features themselves equal the hand-computed frame change."""
    q = np.array([0.05, 0.02, 0.1, -0.2, -0.03, 0.04, 0.7, 0.0, 0.0, np.pi / 4], dtype=np.float32)
    obs = np.asarray(ENV.observe(jnp.asarray(q)))
    c, s = np.cos(0.7), np.sin(0.7)
    to_block = np.array([[c, s], [-s, c]])
    np.testing.assert_allclose(obs[0:2], to_block @ (q[0:2] - q[4:6]), atol=1e-6)
    np.testing.assert_allclose(obs[2:4], to_block @ q[2:4], atol=1e-6)
    np.testing.assert_allclose(obs[4:6], to_block @ (q[7:9] - q[4:6]), atol=1e-6)
    np.testing.assert_allclose(obs[6:8], [np.cos(np.pi / 4 - 0.7), np.sin(np.pi / 4 - 0.7)], atol=1e-6)
    shift, turn = np.array([0.03, -0.05]), 1.1
    R = np.array([[np.cos(turn), -np.sin(turn)], [np.sin(turn), np.cos(turn)]])
    moved = q.copy()
    for sl in (slice(0, 2), slice(4, 6), slice(7, 9)):
        moved[sl] = R @ q[sl] + shift
    moved[2:4] = R @ q[2:4]
    moved[6] += turn
    moved[9] += turn
    np.testing.assert_allclose(np.asarray(ENV.observe(jnp.asarray(moved)))[:10], obs[:10], atol=1e-5)


def test_training_resets_scale_the_offset_from_the_goal_by_difficulty():
    keys = jax.random.split(jax.random.PRNGKey(3), 256)
    full = jax.vmap(ENV.sample_initial_q)(keys)
    goal = np.asarray(ENV.params.goal)
    wrap = lambda a: np.arctan2(np.sin(a), np.cos(a))
    for difficulty in (1.0, 0.25):
        qs = jax.vmap(lambda k: ENV.sample_training_q(k, difficulty))(keys)
        np.testing.assert_allclose(qs[:, 4:6] - goal[:2], difficulty * (full[:, 4:6] - goal[:2]), atol=1e-6)
        np.testing.assert_allclose(wrap(qs[:, 6] - goal[2]), difficulty * wrap(full[:, 6] - goal[2]), atol=1e-5)
        dist = jax.vmap(lambda q: ENV.local_distance(ENV.world_to_block(q[4:7], q[0:2])))(qs)
        assert float(jnp.min(dist)) > ENV.params.pusher_radius
    easiest = jax.vmap(lambda k: ENV.sample_training_q(k, 0.0))(keys)  # floored at 5 % of the offset
    np.testing.assert_allclose(easiest[:, 4:6] - goal[:2], 0.05 * (full[:, 4:6] - goal[:2]), atol=1e-6)


@pytest.mark.parametrize("band", ["near", "middle"])
def test_start_bands_hold_their_distance_and_angle(band):
    (d_lo, d_hi), (a_lo, a_hi) = ENV.start_bands[band]
    qs = jax.vmap(lambda k: ENV.sample_band(k, (d_lo, d_hi), (a_lo, a_hi)))(jax.random.split(jax.random.PRNGKey(4), 512))
    goal = np.asarray(ENV.params.goal)
    dist = np.linalg.norm(np.asarray(qs[:, 4:6]) - goal[:2], axis=1)
    angle = np.abs(np.asarray(qs[:, 6]) - goal[2])
    assert d_lo - 1e-6 <= dist.min() and dist.max() <= d_hi + 1e-6 and dist.max() > d_lo + 0.8 * (d_hi - d_lo)
    assert a_lo - 1e-6 <= angle.min() and angle.max() <= a_hi + 1e-6
    assert np.mean(np.asarray(qs[:, 6]) > goal[2]) == pytest.approx(0.5, abs=0.08)  # both senses of turn
    clearance = jax.vmap(lambda q: ENV.local_distance(ENV.world_to_block(q[4:7], q[0:2])))(qs)
    assert float(jnp.min(clearance)) > ENV.params.pusher_radius


def test_implicit_contact_keeps_large_substeps_close_to_fine_ones():
    """Pushes of 3 s at 10 substeps of 10 ms follow the same pushes at 100 substeps of 1 ms (the stiff
    contact's time constant, b / (k (1 + r^2 / rho^2)), is about 1 ms): block pose within a few mm."""
    fine = envs.make("tblock", substeps=100)
    rng = np.random.default_rng(5)
    q0 = state((0.0, 0.07), (0.0, 0.0, 0.0))
    targets = np.clip(np.array([0.0, -0.02]) + np.cumsum(rng.normal(0.0, 0.01, (30, 2)), 0), -0.2, 0.2)
    coarse_traj = drive(q0, targets)
    step = lambda q, t: (fine.physics_step(q, t / REACH)[0],) * 2
    fine_traj = jax.jit(lambda q, ts: jax.lax.scan(step, q, ts)[1])(q0, jnp.asarray(targets))
    assert float(jnp.abs(fine_traj[-1, 5] - q0[5])) > 0.03  # the block was pushed
    assert float(jnp.max(jnp.linalg.norm(coarse_traj[:, 4:6] - fine_traj[:, 4:6], axis=-1))) < 0.004
    assert float(jnp.max(jnp.abs(coarse_traj[:, 6] - fine_traj[:, 6]))) < 0.03  # of 0.3 rad turned


def test_soft_depth_reaching_changes_the_gradient_out_of_contact_only():
    from apg_jax.envs.smooth import soft_depth, soft_depth_reaching

    with jax.enable_x64(True):
        width, reach = 0.0005, 0.005
        x = jnp.array([-0.02, -0.005, -0.001, 0.0, 0.0002, 0.002])
        surrogate = jax.vmap(jax.grad(lambda v: soft_depth_reaching(v, width, reach)))(x)
        exact = jax.vmap(jax.grad(lambda v: soft_depth(v, width)))(x)
        np.testing.assert_array_equal(soft_depth_reaching(x, width, reach), soft_depth(x, width))
        np.testing.assert_allclose(surrogate[x >= 0], exact[x >= 0], rtol=1e-12)  # in contact: exact
        np.testing.assert_allclose(surrogate[x < 0], jax.nn.sigmoid(x[x < 0] / reach), rtol=1e-12)
        assert np.all(np.asarray(surrogate[x < 0]) > np.asarray(exact[x < 0]))  # reaches further out of contact
        assert float(surrogate[0]) > 1e10 * float(exact[0])  # 2 cm out: sigmoid(-4) against sigmoid(-40)


def test_contact_gradient_reach_sees_a_push_before_the_touch_and_leaves_the_physics_alone():
    """A pusher 8 mm above the bar, driven straight down for one step, stops short of it: the states are
    those of the exact task, the exact gradient of the block's position on the target is ~0, the
    surrogate's says that a lower target pushes the block down (as a touch would)."""
    reaching = envs.make("tblock", contact_gradient_reach=0.005)
    with pytest.raises(ValueError, match="contact_gradient_reach must be >= 0"):
        envs.make("tblock", contact_gradient_reach=-0.001)
    with jax.enable_x64(True):
        top = 0.0 + ENV.params.pusher_radius + 0.008  # the bar's top edge is at y = 0 in the block frame
        q = state((0.0, top), (0.0, 0.0, 0.0)).astype(jnp.float64)
        u = jnp.array([0.0, top]) / REACH  # hold position: no touch
        block_y = lambda env: (lambda u_: env.physics_step(q, u_)[0][5])
        np.testing.assert_array_equal(reaching.physics_step(q, u)[0], ENV.physics_step(q, u)[0])
        exact = jax.grad(block_y(ENV))(u)
        surrogate = jax.grad(block_y(reaching))(u)
        assert abs(float(exact[1])) < 1e-6
        assert float(surrogate[1]) > 1e3 * abs(float(exact[1]))  # lower target -> block lower


def test_reach_margin_leaves_close_gaps_unpenalised_and_pulls_distant_pushers():
    """Pusher straight above the bar at gaps of 1 and 5 cm, reach weight 1 / m: with a 2 cm margin the reach
    term (the reward lost against the same task without it) is ~0 at 1 cm and 3 cm at 5 cm; without a
    margin 1 and 5 cm (softplus smoothing 5 mm: within 1 mm)."""
    margin = envs.make("tblock", reach_margin=0.02, reach_weight=1.0)
    plain = envs.make("tblock", reach_margin=0.0, reach_weight=1.0)
    free = envs.make("tblock", reach_weight=0.0)
    with pytest.raises(ValueError, match="reach_margin must be >= 0"):
        envs.make("tblock", reach_margin=-0.01)
    with jax.enable_x64(True):
        for gap, with_margin, without in ((0.01, 0.0, 0.01), (0.05, 0.03, 0.05)):
            q = state((0.0, ENV.params.pusher_radius + gap), (0.0, 0.0, 0.0)).astype(jnp.float64)
            assert float(free.reward(q) - margin.reward(q)) == pytest.approx(with_margin, abs=1e-3)
            assert float(free.reward(q) - plain.reward(q)) == pytest.approx(without, abs=1e-3)


def test_precision_term_pays_for_the_last_millimetres():
    """Block translated 1 mm and 10 cm off the goal: the precision term costs weight * log(1 + d / scale), d
    the mean keypoint distance (for a pure translation the offset, less the 1 mm smoothing)."""
    precise = envs.make("tblock", precision_weight=0.05, precision_scale=0.002)
    with pytest.raises(ValueError, match="precision_scale must be > 0"):
        envs.make("tblock", precision_scale=0.0)
    goal = ENV.params.goal
    with jax.enable_x64(True):
        for offset in (0.001, 0.1):
            q = state((0.25, -0.25), (goal[0] + offset, goal[1], goal[2])).astype(jnp.float64)
            shift = float(q[4] - q[7])  # the offset as stored (state() builds float32 values)
            keypoint = np.sqrt(shift**2 + ENV.params.distance_eps**2) - ENV.params.distance_eps
            assert float(ENV.reward(q) - precise.reward(q)) == pytest.approx(0.05 * np.log1p(keypoint / 0.002),
                                                                            rel=1e-9)
