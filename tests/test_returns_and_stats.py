"""Hand-computed GAE / TD(lambda), running normalisation and the optimizer guard."""
import jax
import jax.numpy as jnp
import numpy as np
import optax

from apg_jax.agents.returns import compute_gae
from apg_jax.normalization import init_stats, normalize, update_stats
from apg_jax.optim import clip_by_global_norm, global_norm, guarded_update, make_optimizer


def test_gae_hand_computed_termination_vs_truncation():
    gamma, lam = 0.9, 0.8
    rewards = jnp.array([1.0, 2.0, 3.0])
    values = jnp.array([0.5, 1.0, 1.5])
    # step 1 ends its episode; step 2 belongs to a new one. V of the state step 1 reached (before the
    # reset) is 7.0; the other next-state values are the following step's values, then V(s_3) = 2.0.
    next_values = jnp.array([1.0, 7.0, 2.0])
    ended = jnp.array([0.0, 1.0, 0.0])
    d2 = 3.0 + 0.9 * 2.0 - 1.5
    d0 = 1.0 + 0.9 * 1.0 - 0.5
    for terminated, d1 in ((jnp.array([0.0, 1.0, 0.0]), 2.0 - 1.0),  # terminal: no value after it
                           (jnp.zeros(3), 2.0 + 0.9 * 7.0 - 1.0)):  # truncated: bootstrapped with V = 7
        adv, ret = compute_gae(rewards, values, next_values, terminated, ended, gamma, lam)
        a2, a1 = d2, d1  # the episode boundary cuts the recursion either way
        a0 = d0 + gamma * lam * a1
        np.testing.assert_allclose(adv, [a0, a1, a2], rtol=1e-6)
        np.testing.assert_allclose(ret, np.array([a0, a1, a2]) + values, rtol=1e-6)


def test_td_lambda_one_is_monte_carlo_and_zero_is_td0():
    rewards = jnp.array([[1.0], [0.5], [-1.0]])
    values = jnp.array([[0.3], [0.2], [0.1]])
    next_values = jnp.array([[0.2], [0.1], [4.0]])
    zeros = jnp.zeros((3, 1))
    g = 0.5
    _, ret1 = compute_gae(rewards, values, next_values, zeros, zeros, g, 1.0)
    np.testing.assert_allclose(ret1[0, 0], 1.0 + g * 0.5 + g**2 * -1.0 + g**3 * 4.0, rtol=1e-6)
    _, ret0 = compute_gae(rewards, values, next_values, zeros, zeros, g, 0.0)
    np.testing.assert_allclose(ret0[:, 0], [1.0 + g * 0.2, 0.5 + g * 0.1, -1.0 + g * 4.0], rtol=1e-6)


def test_running_stats_match_numpy_regardless_of_batching():
    x = np.random.default_rng(0).normal(3.0, 2.0, size=(1000, 4)).astype(np.float32)
    stats = init_stats(4)
    for part in np.split(x, [10, 300, 301, 777]):
        stats = update_stats(stats, jnp.asarray(part))
    np.testing.assert_allclose(stats.mean, x.mean(0), rtol=1e-5)
    np.testing.assert_allclose(stats.var, x.var(0), rtol=1e-4)
    z = normalize(stats, jnp.asarray(x))
    np.testing.assert_allclose(np.mean(z, 0), 0.0, atol=1e-4)
    np.testing.assert_allclose(np.std(z, 0), 1.0, atol=1e-4)


def test_running_stats_ignore_nonfinite_rows():
    x = np.random.default_rng(1).normal(size=(50, 3)).astype(np.float32)
    dirty = x.copy()
    dirty[7, 1] = np.nan
    dirty[9, 0] = np.inf
    stats = update_stats(init_stats(3), jnp.asarray(dirty))
    clean = np.delete(x, [7, 9], axis=0)
    assert float(stats.count) == 48
    np.testing.assert_allclose(stats.mean, clean.mean(0), rtol=1e-5)
    np.testing.assert_allclose(stats.var, clean.var(0), rtol=1e-4)
    unchanged = update_stats(stats, jnp.full((4, 3), jnp.nan))
    np.testing.assert_array_equal(unchanged.mean, stats.mean)


def test_guard_refuses_nonfinite_gradients():
    opt = make_optimizer(1e-2, 1.0, "constant", 10)
    params = {"w": jnp.ones(3)}
    state = opt.init(params)
    p1, s1, skipped = guarded_update(opt, {"w": jnp.array([1.0, jnp.nan, 0.0])}, state, params)
    assert float(skipped) == 1.0
    np.testing.assert_array_equal(p1["w"], params["w"])
    for a, b in zip(jax.tree.leaves(s1), jax.tree.leaves(state)):
        np.testing.assert_array_equal(a, b)
    p2, _, skipped = guarded_update(opt, {"w": jnp.array([1.0, -1.0, 0.0])}, state, params)
    assert float(skipped) == 0.0 and not np.allclose(p2["w"], params["w"])


def test_clipping_matches_optax_and_keeps_the_direction_of_an_overflowing_gradient():
    """Where the global norm is finite the clip is optax's, number for number; where every entry is finite
    but the norm overflows float32 (entries of 1e20: squares of 1e40), the gradient keeps its direction at
    the clipping norm (optax's divides by an infinite norm and returns zeros)."""
    clip, reference = clip_by_global_norm(2.0), optax.clip_by_global_norm(2.0)
    key = jax.random.PRNGKey(0)
    for scale in (0.1, 1.0, 30.0, 1e15):  # below and above the clipping norm
        grads = {"a": scale * jax.random.normal(key, (5, 4)), "b": scale * jnp.arange(3.0)}
        ours, _ = clip.update(grads, clip.init(grads))
        theirs, _ = reference.update(grads, reference.init(grads))
        for x, y in zip(jax.tree.leaves(ours), jax.tree.leaves(theirs)):
            np.testing.assert_array_equal(x, y)
    huge = {"a": jnp.array([3e20, -4e20], jnp.float32), "b": jnp.zeros((2, 2), jnp.float32)}
    assert not np.isfinite(float(optax.tree.norm(huge)))
    ours, _ = clip.update(huge, clip.init(huge))
    np.testing.assert_allclose(ours["a"], [1.2, -1.6], rtol=1e-6)
    np.testing.assert_array_equal(ours["b"], 0.0)
    np.testing.assert_allclose(float(global_norm(huge)), 5e20, rtol=1e-6)  # logged as the number, not inf
    assert float(global_norm({"a": jnp.array([3.0, 4.0])})) == float(optax.tree.norm({"a": jnp.array([3.0, 4.0])}))
    theirs, _ = reference.update(huge, reference.init(huge))
    np.testing.assert_array_equal(theirs["a"], 0.0)  # what the optax clip did: the gradient lost
    # through the optimizer: the first Adam step moves each parameter by the learning rate, against the sign
    opt = make_optimizer(1e-2, 2.0, "constant", 10)
    params = {"a": jnp.zeros(2), "b": jnp.zeros((2, 2))}
    new, _, skipped = guarded_update(opt, huge, opt.init(params), params)
    assert float(skipped) == 0.0
    np.testing.assert_allclose(new["a"], [-1e-2, 1e-2], rtol=1e-4)
    nan = {"a": jnp.array([jnp.nan, 1.0]), "b": jnp.zeros((2, 2))}
    assert not np.all(np.isfinite(clip.update(nan, clip.init(nan))[0]["a"]))  # left for the guard to refuse
