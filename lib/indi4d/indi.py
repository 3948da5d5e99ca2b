"""InDI: Inversion by Direct Iteration (Delbracio & Milanfar, TMLR 2023).

Notation: ``x`` is the high-quality image (HQ), ``y`` the degraded one (the
x2-upscaled LQ scan), both in [-1, 1]. For ``t`` in (0, 1] the intermediate
image is the straight blend

    x_t = (1 - t) x + t y + t eps n,        n ~ N(0, I),

so ``x_0 = x`` and ``x_1 = y + eps n``. The network ``F(x_t, t)`` is trained
to return ``x`` from any ``x_t``. Restoration walks from ``t = 1`` to
``t = 0`` in ``N`` steps of ``delta = 1 / N``; each step moves a fraction
``delta / t`` of the way towards the current estimate of ``x``:

    x_{t - delta} = (delta / t) F(x_t, t) + (1 - delta / t) x_t.

Small ``N`` regresses towards the mean (``N = 1`` is a plain one-shot
regressor); larger ``N`` restores more detail, and with it more noise.

The functions here work on ``(B, H, W, 1)`` float32 arrays; the network is any
callable ``network([x_t, t], training=False)`` with ``x_t`` (B, H, W, 1) and
``t`` (B,), e.g. a model from :func:`indi4d.model.build_unet`.
"""

import numpy as np
import tensorflow as tf
from tqdm.auto import tqdm

#: Objective defaults: ``p_one`` is the share of samples with t = 1 exactly
#: (the first sampling step, the one that must work from the raw LQ); ``eps``
#: the noise scale in x_t; ``threshold`` where the loss turns from MAE to MSE.
DEFAULTS = {"p_one": 0.1, "eps": 0.0, "threshold": 0.5}


def sample_t(batch, seed, p_one=DEFAULTS["p_one"]):
    """Draw training times from the mixture ``p_one * delta(t - 1) + (1 - p_one) * U(0, 1]``.

    Parameters
    ----------
    batch : int or scalar tensor
        Number of times.
    seed : tensor or array, shape (2,), int
        Stateless seed (``tf.random.stateless_*``): the same seed gives the same times.
    p_one : float
        Probability of ``t = 1`` exactly, in [0, 1].

    Returns
    -------
    tf.Tensor, shape (batch,), float32, values in (0, 1]
    """
    seed = tf.cast(seed, tf.int32)
    u_pick = tf.random.stateless_uniform((batch,), seed=seed)
    u_time = tf.random.stateless_uniform((batch,), seed=seed + tf.constant([0, 1], tf.int32))
    # 1 - U[0, 1) is U(0, 1]: t = 0 (nothing to restore) is never drawn
    return tf.where(u_pick < p_one, tf.ones_like(u_time), 1.0 - u_time)


def degrade(x, y, t, eps=0.0, noise=None):
    """The InDI intermediate ``x_t = (1 - t) x + t y + t eps n``.

    Parameters
    ----------
    x, y : array or tensor, shape (B, H, W, C), float32
        High-quality target and degraded input.
    t : array or tensor, shape (B,), float32
    eps : float
        Noise scale.
    noise : array or tensor, shape (B, H, W, C), optional
        Standard normal ``n``; required when ``eps > 0``.

    Returns
    -------
    tf.Tensor, shape (B, H, W, C), float32
    """
    t = tf.reshape(tf.cast(t, tf.float32), (-1, 1, 1, 1))
    x = tf.cast(x, tf.float32)
    y = tf.cast(y, tf.float32)
    x_t = (1.0 - t) * x + t * y
    if eps:
        if noise is None:
            raise ValueError("degrade: eps > 0 needs a noise array")
        x_t = x_t + t * eps * tf.cast(noise, tf.float32)
    return x_t


def berhu_loss(pred, target, threshold=DEFAULTS["threshold"]):
    """MAE for small errors, MSE for large ones (the reversed Huber, "berHu"), averaged.

    Per pixel, with ``e = |pred - target|`` and ``c = threshold``::

        l(e) = e                        if e <= c
        l(e) = (e**2 + c**2) / (2 c)    if e >  c

    Both the value (``c``) and the slope (1) agree at ``e = c``, so the loss is
    continuous with a continuous gradient; small errors keep a constant
    gradient (MAE) and large ones a growing one (MSE). With ``c = 0.5`` the
    upper branch is ``e**2 + 0.25``.

    Parameters
    ----------
    pred, target : tensor, same shape, float32
    threshold : float
        ``c`` > 0, in the units of the images (here: [-1, 1] grey values).

    Returns
    -------
    tf.Tensor, scalar float32
    """
    if threshold <= 0:
        raise ValueError(f"berhu_loss: threshold must be > 0, got {threshold}")
    e = tf.abs(tf.cast(pred, tf.float32) - tf.cast(target, tf.float32))
    c = tf.constant(threshold, tf.float32)
    return tf.reduce_mean(tf.where(e <= c, e, (tf.square(e) + c * c) / (2.0 * c)))


def indi_objective(network, lq, hq, seed, p_one=DEFAULTS["p_one"], eps=DEFAULTS["eps"],
                   threshold=DEFAULTS["threshold"], training=True):
    """InDI training loss on one batch: ``berhu(F(x_t, t), x)``.

    Parameters
    ----------
    network : keras.Model
        Inputs ``[x_t, t]``.
    lq, hq : tensor, shape (B, H, W, 1), float32 in [-1, 1]
        ``y`` and ``x``.
    seed : tensor, shape (2,), int
        Stateless seed of this batch's times and noise (same seed, same loss).
    p_one, eps, threshold : float
        See :func:`sample_t`, :func:`degrade`, :func:`berhu_loss`.
    training : bool
        Passed to the network.

    Returns
    -------
    tf.Tensor, scalar float32
    """
    seed = tf.cast(seed, tf.int32)
    t = sample_t(tf.shape(hq)[0], seed, p_one)
    noise = None
    if eps:
        noise = tf.random.stateless_normal(tf.shape(hq), seed=seed + tf.constant([0, 2], tf.int32))
    x_t = degrade(hq, lq, t, eps, noise)
    pred = network([x_t, t], training=training)
    return berhu_loss(pred, hq, threshold)


def _as_batch(y, name="y"):
    """(H, W), (B, H, W) or (B, H, W, 1) -> float32 (B, H, W, 1) and a function undoing it."""
    y = np.asarray(y)
    if not np.issubdtype(y.dtype, np.floating):
        raise ValueError(f"{name}: expected floating-point images in [-1, 1], got dtype {y.dtype}")
    if y.ndim == 2:
        return y[None, :, :, None].astype(np.float32), lambda a: a[0, :, :, 0]
    if y.ndim == 3:
        return y[..., None].astype(np.float32), lambda a: a[..., 0]
    if y.ndim == 4:
        if y.shape[-1] != 1:
            raise ValueError(f"{name}: expected 1 channel, got shape {y.shape}")
        return y.astype(np.float32), lambda a: a
    raise ValueError(f"{name}: expected (H, W), (B, H, W) or (B, H, W, 1), got shape {y.shape}")


def indi_sample(network, y, steps, eps=0.0, seed=None, stochastic=False, progress=False,
                return_trajectory=False):
    """Restore ``y`` with ``steps`` InDI steps.

    Starts from ``x_1 = y + eps n`` and applies, for ``t = 1, (N-1)/N, ..., 1/N``
    with ``delta = 1/N``::

        deterministic:  x_{t-delta} = (delta/t) F(x_t, t) + (1 - delta/t) x_t
        stochastic:     x_{t-delta} = (1 - t + delta) F + (t - delta) (d - eps n_t + eps n')

    where ``d = (x_t - (1 - t) F) / t`` is the part of ``x_t`` that is not the
    clean estimate (degradation plus the current noise ``eps n_t``) and ``n'``
    is fresh noise. The deterministic update carries the starting noise along
    (it equals the stochastic one with ``n' = n_t``); the stochastic one
    re-draws it at every step, keeping the noise level ``t eps`` the network
    saw in training (for ``eps = 0`` both are identical). At the last step
    ``delta / t = 1``, so the result is ``F(x_delta, delta)``.

    Parameters
    ----------
    network : callable
        ``network([x_t, t], training=False)`` with ``x_t`` (B, H, W, 1) and
        ``t`` (B,) float32, returning (B, H, W, 1): a Keras model, or a tiled
        wrapper from :class:`indi4d.inference.TiledNetwork`.
    y : ndarray, shape (H, W), (B, H, W) or (B, H, W, 1), float
        The degraded images, normalised to [-1, 1].
    steps : int
        ``N`` >= 1 (the paper uses 7-12).
    eps : float
        Noise scale (as in training).
    seed : int, optional
        Seed of the noise; same seed, same result.
    stochastic : bool
        Re-draw the noise at every step (see above).
    progress : bool
        Show a progress bar over the steps.
    return_trajectory : bool
        Also return the list of iterates ``[x_1, x_{1-delta}, ..., x_0]``.

    Returns
    -------
    ndarray, float32, the shape of ``y``
        The restored images (and the trajectory, each of the same shape, if asked).

    Raises
    ------
    ValueError
        For ``steps < 1``, ``eps < 0``, non-finite values, or a wrong shape.
    """
    if int(steps) != steps or steps < 1:
        raise ValueError(f"indi_sample: steps must be an integer >= 1, got {steps}")
    if eps < 0:
        raise ValueError(f"indi_sample: eps must be >= 0, got {eps}")
    steps = int(steps)
    x, unbatch = _as_batch(y)
    if not np.all(np.isfinite(x)):
        raise ValueError("indi_sample: y contains NaN or infinite values")
    rng = np.random.default_rng(seed)
    noise = rng.standard_normal(x.shape, dtype=np.float32) if eps > 0 else None
    if noise is not None:
        x = x + eps * noise  # x_1 = y + eps n
    batch = x.shape[0]
    trajectory = [unbatch(x.copy())] if return_trajectory else None
    for i in tqdm(range(steps), desc="InDI steps", disable=not progress, leave=False):
        t = (steps - i) / steps
        ratio = 1.0 / (steps - i)  # delta / t, exact: the last step has ratio 1
        t_vec = np.full((batch,), t, np.float32)
        pred = np.asarray(network([x, t_vec], training=False), dtype=np.float32)
        if stochastic and noise is not None and i < steps - 1:
            # keep the clean estimate, swap the noise: x_{t-d} = (1-t+d) F + (t-d)(d_t - eps n_t + eps n')
            t_next = t - 1.0 / steps
            rest = (x - (1.0 - t) * pred) / t
            fresh = rng.standard_normal(x.shape, dtype=np.float32)
            x = (1.0 - t_next) * pred + t_next * (rest + eps * (fresh - noise))
            noise = fresh
        else:
            x = ratio * pred + (1.0 - ratio) * x
        if return_trajectory:
            trajectory.append(unbatch(x.copy()))
    out = unbatch(x)
    return (out, trajectory) if return_trajectory else out
