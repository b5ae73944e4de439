"""Parity of the Warp-PyTorch bridge with the JAX tasks: forward, VJPs, rollout gradients, bad input.

Runs on CPU in CI; on a machine with CUDA the same tests also run on ``cuda`` (parameter ``device``).
"""
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

import warp_bridge
from apg_jax import envs
from gradcheck import relative_error

TASKS = ["pointmass1d", "pointmass2d", "tblock", "franka"]
DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
# Tolerances: 10x the float32 differences measured on the CPU (2026-11, Warp 1.19 vs XLA), per task:
# the point masses are a few roundings, tblock sums 10 contact substeps, franka a Cholesky solve per
# substep. CUDA rounds differently (fused multiply-adds, fast math): 10x more there.
FORWARD_TOL = {"pointmass1d": 1e-8, "pointmass2d": 1.3e-5, "tblock": 6e-6, "franka": 5e-6}  # measured 1e-9, 1.3e-6, 6e-7, 4.8e-7
VJP_TOL = {"pointmass1d": 5e-8, "pointmass2d": 2e-6, "tblock": 1e-5, "franka": 4e-6}  # measured 4e-9, 1.9e-7, 9.2e-7, 3.7e-7
ROLLOUT_TOL = {"pointmass1d": 5e-7, "pointmass2d": 4e-4, "tblock": 8e-5, "franka": 6e-6}  # measured 5e-8, 4e-5, 7.5e-6, 6.1e-7


def tolerance(table, task, device):
    return table[task] * (10.0 if device.startswith("cuda") else 1.0)


def batch(env, n, seed):
    qs = jax.vmap(lambda k: env.physics_state(env.reset(k)))(jax.random.split(jax.random.PRNGKey(seed), n))
    # start some environments in contact: inside obstacles/walls, or the pusher pressing on the bar
    if env.name == "pointmass2d":
        qs = qs.at[: n // 4, 0].set(jnp.linspace(-1.02, 0.2, n // 4))
    if env.name == "tblock":
        theta = qs[: n // 4, 6]
        touching = qs[: n // 4, 4:6] + 0.01 * jnp.stack([-jnp.sin(theta), jnp.cos(theta)], -1)
        qs = qs.at[: n // 4, 0:2].set(touching)
    us = jax.random.uniform(jax.random.PRNGKey(seed + 1), (n, env.action_size), minval=-1.3, maxval=1.3)
    return qs, us


def parity_bound(table, task, device, ref, exact):
    """The tolerance of ``table``, widened by three times JAX's own float32 error (``ref`` against the
    float64 ``exact``): where a contact state amplifies rounding (tblock's implicit contact solve in a
    deep contact: 5e-5 of the VJP, 6 % of a 32-step rollout gradient through a fast contact event) no
    float32 implementation can agree more closely, while a wrong derivative still misses by far."""
    return tolerance(table, task, device) + 3 * relative_error(np.asarray(ref), np.asarray(exact))


def float64_vjp(task, qs, us, g_q, g_r):
    """The VJP of the batched step in float64 (call under ``jax.enable_x64``)."""
    env = envs.make(task)
    f64 = lambda x: jnp.asarray(np.asarray(x), jnp.float64)
    _, vjp = jax.vjp(jax.vmap(env.physics_step), f64(qs), f64(us))
    return vjp((f64(g_q), f64(g_r)))


def to_torch(x, device, grad=False):
    return torch.tensor(np.asarray(x), device=device, requires_grad=grad)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("task", TASKS)
def test_forward_matches_jax_physics_step(task, device):
    sim, env = warp_bridge.make(task, device=device), envs.make(task)
    qs, us = batch(env, 256, 0)
    q_next, reward = jax.vmap(env.physics_step)(qs, us)
    wq, wr = sim.step(to_torch(qs, device), to_torch(us, device))
    for ours, ref in ((wq, q_next), (wr, reward)):
        ours, ref = ours.cpu().numpy(), np.asarray(ref)
        # max-norm relative error per state component over the batch: float32 sums over 50 tblock
        # substeps differ by a few ulps of the largest angle in the batch (~pi), not of every small one
        scale = np.max(np.abs(ref), axis=0) + 1e-6
        assert np.max(np.max(np.abs(ours - ref), axis=0) / scale) < tolerance(FORWARD_TOL, task, device)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("task", TASKS)
def test_vector_jacobian_products_match_jax(task, device):
    sim, env = warp_bridge.make(task, device=device), envs.make(task)
    qs, us = batch(env, 128, 1)
    rng = np.random.default_rng(2)
    g_q = rng.normal(size=qs.shape).astype(np.float32)
    g_r = rng.normal(size=(qs.shape[0],)).astype(np.float32)
    _, vjp = jax.vjp(jax.vmap(env.physics_step), qs, us)
    ref_q, ref_u = vjp((jnp.asarray(g_q), jnp.asarray(g_r)))
    with jax.enable_x64(True):
        exact_q, exact_u = float64_vjp(task, qs, us, g_q, g_r)
    q_t, u_t = to_torch(qs, device, True), to_torch(us, device, True)
    wq, wr = sim.step(q_t, u_t)
    ((wq * to_torch(g_q, device)).sum() + (wr * to_torch(g_r, device)).sum()).backward()
    for ours, ref, exact in ((q_t.grad, ref_q, exact_q), (u_t.grad, ref_u, exact_u)):
        assert relative_error(ours.cpu().numpy(), ref) < parity_bound(VJP_TOL, task, device, ref, exact)


@pytest.mark.slow
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("task", TASKS)
def test_rollout_return_gradient_matches_jax(task, device):
    sim, env = warp_bridge.make(task, device=device), envs.make(task)
    qs, _ = batch(env, 16, 3)
    actions = jax.random.uniform(jax.random.PRNGKey(4), (32, 16, env.action_size), minval=-1.0, maxval=1.0)

    def jax_return(q0, a):
        def body(q, u):
            q, r = jax.vmap(env.physics_step)(q, u)
            return q, r

        return jnp.sum(jax.lax.scan(body, q0, a)[1])

    ref_q, ref_u = jax.grad(jax_return, argnums=(0, 1))(qs, actions)
    with jax.enable_x64(True):  # the same gradient in float64: how well float32 can get it at all
        env = envs.make(task)
        exact_q, exact_u = jax.grad(jax_return, argnums=(0, 1))(qs.astype(jnp.float64), actions.astype(jnp.float64))
    q_t, a_t = to_torch(qs, device, True), to_torch(actions, device, True)
    _, rewards = sim.rollout(q_t, a_t)
    rewards.sum().backward()
    for ours, ref, exact in ((a_t.grad, ref_u, exact_u), (q_t.grad, ref_q, exact_q)):
        assert relative_error(ours.cpu().numpy(), ref) < parity_bound(ROLLOUT_TOL, task, device, ref, exact)


@pytest.mark.parametrize("task", TASKS)
def test_adapter_gradcheck(task):
    """float32 kernels: torch's gradcheck with finite-difference step 1e-3 and tolerance 2e-2."""
    sim, env = warp_bridge.make(task), envs.make(task)
    qs, us = batch(env, 4, 5)
    us = us * 0.5  # away from the clip kinks
    q_t, u_t = to_torch(qs, "cpu", True), to_torch(us, "cpu", True)
    with warnings.catch_warnings():  # gradcheck warns that float32 inputs are not double precision
        warnings.filterwarnings("ignore", message=".*not a double precision", category=UserWarning)
        assert torch.autograd.gradcheck(lambda q, u: sim.step(q, u), (q_t, u_t), eps=1e-3, atol=2e-2, rtol=2e-2)


def test_inputs_without_grad_and_bad_input():
    sim = warp_bridge.make("pointmass2d")
    q = torch.zeros(3, 7)
    q[:, 0:2] = 0.6  # free space
    q[:, 4] = 0.5
    q_next, reward = sim.step(q, torch.ones(3, 2))
    assert not q_next.requires_grad and torch.all(q_next[:, 2] > 0)  # pushed along +x
    with pytest.raises(ValueError, match=r"shape \[N, 2\]"):
        sim.step(q, torch.ones(3, 3))
    with pytest.raises(ValueError, match="float32"):
        sim.step(q.double(), torch.ones(3, 2))
    with pytest.raises(ValueError, match="same batch size"):
        sim.step(q, torch.ones(4, 2))
    with pytest.raises(ValueError, match="this sim was made for"):
        warp_bridge.make("pointmass2d", device="cuda").step(q, torch.ones(3, 2))
    with pytest.raises(ValueError, match="available: pointmass1d"):
        warp_bridge.make("nosuchtask")


def test_device_spellings_name_the_device_tensors_report():
    # found on an H200: make(device="cuda") refused tensors made with device="cuda" (they report cuda:0)
    assert warp_bridge.canonical_device("cpu") == torch.zeros(1).device
    current = torch.cuda.current_device() if torch.cuda.is_available() else 0
    assert warp_bridge.canonical_device("cuda") == torch.device("cuda", current)
    assert warp_bridge.canonical_device("cuda:1") == torch.device("cuda", 1)
    assert warp_bridge.canonical_device(torch.device("cuda")) != torch.device("cuda")  # the index is filled in


def test_constants_come_from_the_jax_task():
    env = envs.make("pointmass1d", force_scale=2.0)
    sim = warp_bridge.make("pointmass1d", force_scale=2.0)
    q, u = jnp.array([[0.0, 0.0, 0.5]]), jnp.array([[1.0]])
    ref = jax.vmap(env.physics_step)(q, u)[0]
    np.testing.assert_allclose(sim.step(to_torch(q, "cpu"), to_torch(u, "cpu"))[0].numpy(), ref, rtol=1e-6)


def test_tblock_reward_parameters_come_from_the_jax_task():
    """Non-default reward terms (reach weight 1 / m with a 2 cm margin, the precision term) give the Warp twin
    the JAX task's rewards."""
    overrides = dict(reach_weight=1.0, reach_margin=0.02, precision_weight=0.1)
    env, sim = envs.make("tblock", **overrides), warp_bridge.make("tblock", **overrides)
    qs, us = batch(env, 64, 3)
    reward = jax.vmap(env.physics_step)(qs, us)[1]
    assert float(jnp.std(reward - jax.vmap(envs.make("tblock").physics_step)(qs, us)[1])) > 1e-3  # it matters
    np.testing.assert_allclose(sim.step(to_torch(qs, "cpu"), to_torch(us, "cpu"))[1].numpy(), reward,
                               rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("task, overrides", [("tblock", {"contact_gradient_reach": 0.005}),
                                             ("franka", {"link_mass_scale": 1.2})])
def test_warp_twins_refuse_model_options_their_kernels_do_not_have(task, overrides):
    """An option only the JAX task implements is an error on the Warp side, not silently the default physics."""
    envs.make(task, **overrides)  # valid for the JAX task
    with pytest.raises(ValueError, match="needs the JAX backend"):
        warp_bridge.make(task, **overrides)
