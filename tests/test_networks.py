"""The shared networks: initialisation, output ranges, and a seed-batched init free of LAPACK calls."""
import re

import jax
import jax.numpy as jnp
import numpy as np

from apg_jax.networks import gaussian_entropy, gaussian_log_prob, init_params, make_networks, orthogonal


def test_orthogonal_initialiser_is_orthogonal_and_scaled():
    keys = jax.random.split(jax.random.PRNGKey(0), 100)
    for shape in [(64, 64), (3, 64), (64, 2)]:
        w = jax.vmap(lambda k: orthogonal(2.0)(k, shape))(keys)
        gram = jnp.einsum("bij,bik->bjk", w, w) if shape[0] >= shape[1] else jnp.einsum("bji,bki->bjk", w, w)
        np.testing.assert_allclose(gram, 4.0 * np.broadcast_to(np.eye(gram.shape[-1]), gram.shape), atol=1e-5)
    # different keys, different matrices, with entries spread like a Haar matrix's (variance 1/n)
    w = jax.vmap(lambda k: orthogonal()(k, (64, 64)))(keys)
    assert abs(float(jnp.std(w)) - 0.125) < 0.005
    assert float(jnp.max(jnp.abs(w[0] - w[1]))) > 0.1


def test_seed_batched_init_uses_no_lapack():
    """flax's orthogonal init runs a batched QR under vmap, which deadlocked on 2-core CPUs."""
    actor, critic = make_networks(2, (64, 64), "tanh", -0.5)
    jaxpr = str(jax.make_jaxpr(jax.vmap(lambda k: init_params(actor, critic, k, 8)))(
        jax.random.split(jax.random.PRNGKey(0), 4)))
    for primitive in ("householder_product", "geqrf", "qr", "svd", "eigh", "lu"):
        assert not re.search(rf"\b{primitive}\b", jaxpr), primitive
    assert re.search(r"\bdot_general\b", jaxpr)  # the Newton-Schulz products are there


def test_actor_outputs_and_gaussian_helpers():
    actor, critic = make_networks(3, (32,), "relu", -1.0)
    a_params, c_params = init_params(actor, critic, jax.random.PRNGKey(1), 5)
    obs = 100.0 * jax.random.normal(jax.random.PRNGKey(2), (50, 5))
    mean, log_std = actor.apply(a_params, obs)
    assert mean.shape == (50, 3) and np.all(np.abs(mean) <= 1.0)
    np.testing.assert_array_equal(log_std, -1.0 * np.ones(3))
    assert critic.apply(c_params, obs).shape == (50,)
    x, mu, ls = jnp.array([0.3, -0.2]), jnp.array([0.1, 0.1]), jnp.array([-0.5, 0.2])
    expected = np.sum(-0.5 * ((x - mu) / np.exp(ls)) ** 2 - ls - 0.5 * np.log(2 * np.pi))
    np.testing.assert_allclose(gaussian_log_prob(x, mu, ls), expected, rtol=1e-6)
    np.testing.assert_allclose(gaussian_entropy(ls), np.sum(ls + 0.5 * np.log(2 * np.pi * np.e)), rtol=1e-6)
