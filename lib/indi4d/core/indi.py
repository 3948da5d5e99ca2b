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

Options of this session (defaults keep the original behaviour):

* targets with two channels (Noise2Noise across two independent HQ
  reconstructions): channel 0 builds ``x_t``, channel 1 is the loss target;
* ``loss_weighting="min_snr"``: the loss of the velocity error, capped near
  ``t -> 0`` (:func:`loss_scale`);
* ``noise_schedule``: the noise in ``x_t`` has std ``t eps`` (``"linear"``, the
  original) or ``sqrt(t) eps`` (``"brownian"``: a Brownian motion in ``t``);
  the stochastic sampler adds InDI's Brownian increment, which keeps that
  level at every step (:func:`noise_std`);
* the sampler clips its result to [-1, 1] (only at the end) when the network's
  output is not bounded (linear head or residual form).

The functions here work on ``(B, H, W, 1)`` float32 arrays; the network is any
callable ``network([x_t, t], training=False)`` with ``x_t`` (B, H, W, 1) and
``t`` (B,), e.g. a model from :func:`indi4d.core.model.build_unet`.
"""

import numpy as np
import tensorflow as tf
from tqdm.auto import tqdm

from .steps import check_steps

#: Objective defaults: ``p_one`` is the share of samples with t = 1 exactly
#: (the first sampling step, the one that must work from the raw LQ); ``eps``
#: the noise scale in x_t; ``threshold`` where the loss turns from MAE to MSE.
#: ``loss_weighting``/``t_min``: see :func:`loss_scale`; ``noise_schedule``: see :func:`noise_std`.
DEFAULTS = {"p_one": 1 / 3, "eps": 0.0, "threshold": 0.5, "loss_weighting": "none", "t_min": 0.1,
            "noise_schedule": "linear"}
LOSS_WEIGHTINGS = ("none", "min_snr")
NOISE_SCHEDULES = ("linear", "brownian")


def noise_std(t, eps, schedule="linear"):
    """Std of the noise in ``x_t``: ``sigma_t = t eps_t`` with InDI's ``eps_t``.

    ``"linear"``: ``eps_t = eps``, so ``sigma_t = t eps`` (the original form);
    ``"brownian"``: ``eps_t = eps / sqrt(t)``, so ``sigma_t = eps sqrt(t)``, the
    std of a Brownian motion ``eps W_t``. Both give ``sigma_1 = eps`` and
    ``sigma_0 = 0``.

    Parameters
    ----------
    t : float, array or tensor, values in [0, 1]
    eps : float
    schedule : {"linear", "brownian"}

    Returns
    -------
    Same type as ``t``.
    """
    if schedule not in NOISE_SCHEDULES:
        raise ValueError(f"noise schedule must be one of {NOISE_SCHEDULES}, got {schedule!r}")
    if schedule == "linear":
        return t * eps
    return eps * (tf.sqrt(t) if tf.is_tensor(t) else np.sqrt(t))


def loss_scale(t, weighting="none", t_min=DEFAULTS["t_min"]):
    """Per-sample factor ``s(t)`` the x-space error ``F - x`` is multiplied by before the loss.

    ``"none"``: ``s = 1`` (the loss of the x error, the original). ``"min_snr"``:
    ``s = 1 / max(t, t_min)``. Why: with ``F = x_t - t g`` the x error is
    ``F - x = t (v - g)`` with ``v = (x_t - x) / t`` the velocity (``y - x``
    plus the noise), so an x-space loss weights the velocity error by ``t**2``
    (quadratic branch), which vanishes as ``t -> 0``: the small-t steps that
    should refine are not trained. Scaling by ``1 / max(t, t_min)`` makes the
    loss that of the velocity error ``v - g`` for ``t >= t_min``, and for
    ``t < t_min`` that of the x error times ``1 / t_min``; in x-space the
    quadratic weight is ``min(1 / t**2, gamma)`` with ``gamma = 1 / t_min**2``
    (Min-SNR-gamma, Hang et al. 2023: the weight grows as the task gets easier,
    but is capped). It is finite for every t in [0, 1].

    Parameters
    ----------
    t : tensor, shape (B,), float32
    weighting : {"none", "min_snr"}
    t_min : float
        > 0, where the weight stops growing.

    Returns
    -------
    tf.Tensor, shape (B,), float32, in [1, 1 / t_min]
    """
    if weighting not in LOSS_WEIGHTINGS:
        raise ValueError(f"loss_weighting must be one of {LOSS_WEIGHTINGS}, got {weighting!r}")
    t = tf.cast(t, tf.float32)
    if weighting == "none":
        return tf.ones_like(t)
    if not t_min > 0:
        raise ValueError(f"loss_scale: t_min must be > 0, got {t_min}")
    return 1.0 / tf.maximum(t, t_min)  # velocity error for t >= t_min, x error / t_min below


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


def degrade(x, y, t, eps=0.0, noise=None, schedule="linear"):
    """The InDI intermediate ``x_t = (1 - t) x + t y + sigma_t n`` (``sigma_t = t eps`` by default).

    Parameters
    ----------
    x, y : array or tensor, shape (B, H, W, C), float32
        High-quality target and degraded input.
    t : array or tensor, shape (B,), float32
    eps : float
        Noise scale.
    noise : array or tensor, shape (B, H, W, C), optional
        Standard normal ``n``; required when ``eps > 0``.
    schedule : {"linear", "brownian"}
        ``sigma_t`` (:func:`noise_std`).

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
        x_t = x_t + noise_std(t, eps, schedule) * tf.cast(noise, tf.float32)
    return x_t


def split_target(hq):
    """(the image that builds ``x_t``, the loss target) of an HQ batch of 1 or 2 channels.

    Parameters
    ----------
    hq : tensor, shape (B, H, W, 1) or (B, H, W, 2), float32
        One channel: both are ``hq``. Two (Noise2Noise across independent HQ
        reconstructions): channel 0 builds ``x_t``, channel 1 is the target.

    Returns
    -------
    (tf.Tensor, tf.Tensor), each (B, H, W, 1) float32
    """
    hq = tf.cast(hq, tf.float32)
    channels = hq.shape[-1]
    if channels == 1:
        return hq, hq
    if channels == 2:
        return hq[..., :1], hq[..., 1:]
    raise ValueError(f"hq must have 1 or 2 channels (B, H, W, c), got shape {tuple(hq.shape)}")


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
                   threshold=DEFAULTS["threshold"], training=True, loss_weighting=DEFAULTS["loss_weighting"],
                   t_min=DEFAULTS["t_min"], noise_schedule=DEFAULTS["noise_schedule"]):
    """InDI training loss on one batch: ``berhu(s(t) (F(x_t, t) - x))``.

    Parameters
    ----------
    network : keras.Model
        Inputs ``[x_t, t]``.
    lq : tensor, shape (B, H, W, 1), float32 in [-1, 1]
        ``y``.
    hq : tensor, shape (B, H, W, 1) or (B, H, W, 2), float32 in [-1, 1]
        ``x``; with two channels channel 0 builds ``x_t`` and channel 1 is
        the target (:func:`split_target`).
    seed : tensor, shape (2,), int
        Stateless seed of this batch's times and noise (same seed, same loss).
    p_one, eps, threshold : float
        See :func:`sample_t`, :func:`degrade`, :func:`berhu_loss`.
    training : bool
        Passed to the network.
    loss_weighting : {"none", "min_snr"}
        ``s(t)`` (:func:`loss_scale`); ``"none"`` is ``berhu(F, x)``.
    t_min : float
        Cap of ``"min_snr"``.
    noise_schedule : {"linear", "brownian"}
        Std of the noise in ``x_t`` (:func:`noise_std`); sample with the same.

    Returns
    -------
    tf.Tensor, scalar float32
    """
    seed = tf.cast(seed, tf.int32)
    start, target = split_target(hq)
    t = sample_t(tf.shape(start)[0], seed, p_one)
    noise = None
    if eps:
        noise = tf.random.stateless_normal(tf.shape(start), seed=seed + tf.constant([0, 2], tf.int32))
    x_t = degrade(start, lq, t, eps, noise, noise_schedule)
    pred = network([x_t, t], training=training)
    if loss_weighting == "none":
        return berhu_loss(pred, target, threshold)
    scale = tf.reshape(loss_scale(t, loss_weighting, t_min), (-1, 1, 1, 1))
    # berhu of s(t) (F - x): the velocity error (v - g) for t >= t_min (see loss_scale)
    return berhu_loss(scale * (tf.cast(pred, tf.float32) - target), tf.zeros_like(target), threshold)


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


def _sampler_settings(network, noise_schedule, clip):
    """The sampler's noise schedule and clipping: given, or read off the network.

    ``noise_schedule`` None: the model folder's training schedule when the
    network carries its ``config`` (an :class:`indi4d.inference.Enhancer`),
    else ``"linear"``. ``clip`` None: clip unless the underlying Keras model's
    output is bounded (:func:`indi4d.core.model.output_is_bounded`); a plain
    callable is not clipped.
    """
    from .model import output_is_bounded

    if noise_schedule is None:
        config = getattr(network, "config", None)
        training = config.get("training", {}) if isinstance(config, dict) else {}
        noise_schedule = training.get("noise_schedule", DEFAULTS["noise_schedule"])
    if noise_schedule not in NOISE_SCHEDULES:
        raise ValueError(f"indi_sample: noise_schedule must be one of {NOISE_SCHEDULES}, got {noise_schedule!r}")
    if clip is None:
        keras_model = network if hasattr(network, "layers") else getattr(network, "network", None)
        clip = hasattr(keras_model, "layers") and not output_is_bounded(keras_model)
    return noise_schedule, bool(clip)


def indi_sample(network, y, steps, eps=0.0, seed=None, stochastic=False, progress=False,
                return_trajectory=False, noise_schedule=None, clip=None):
    """Restore ``y`` with ``steps`` InDI steps.

    Starts from ``x_1 = y + eps n`` and applies, for ``t = 1, (N-1)/N, ..., 1/N``
    with ``delta = 1/N``::

        deterministic:  x_{t-delta} = (delta/t) F(x_t, t) + (1 - delta/t) x_t
        stochastic:     the same + sqrt(sigma_{t-delta}**2 - (1 - delta/t)**2 sigma_t**2) n'

    with ``n'`` fresh standard normal noise and ``sigma_t`` the noise std of
    training (:func:`noise_std`). The deterministic step carries the noise of
    ``x_t`` scaled by ``1 - delta/t``; the stochastic one adds InDI's
    Brownian increment (Delbracio & Milanfar 2023, the noisy sampler:
    ``(t - delta) sqrt(eps_{t-delta}**2 - eps_t**2) n'`` with ``sigma_t = t eps_t``)
    so the noise is back at the level the network saw in training. For the
    ``"linear"`` schedule (``eps_t = eps``) the increment is zero: samples differ
    by their starting noise only. For ``"brownian"`` (``sigma_t = eps sqrt(t)``)
    its variance is ``eps**2 delta (t - delta) / t``. At the last step
    ``delta / t = 1``, so the result is ``F(x_delta, delta)`` (clipped to
    [-1, 1] when the network's output is unbounded).

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
        Noise scale (the one of training: a model folder's ``config.json``).
    seed : int, optional
        Seed of the noise; same seed, same result.
    stochastic : bool
        Add the Brownian increment at every step (see above).
    progress : bool
        Show a progress bar over the steps.
    return_trajectory : bool
        Also return the list of iterates ``[x_1, x_{1-delta}, ..., x_0]``.
    noise_schedule : {"linear", "brownian"}, optional
        ``sigma_t`` (:func:`noise_std`); default the network's training one
        (``network.config["training"]``), else ``"linear"``.
    clip : bool, optional
        Clip the result (only the last iterate) to [-1, 1]; default: when the
        Keras model's output is not bounded (linear head, residual form).

    Returns
    -------
    ndarray, float32, the shape of ``y``
        The restored images (and the trajectory, each of the same shape, if asked).

    Raises
    ------
    ValueError
        For ``steps < 1``, ``eps < 0``, non-finite values, or a wrong shape.
    """
    check_steps(steps, "indi_sample: steps")
    if eps < 0:
        raise ValueError(f"indi_sample: eps must be >= 0, got {eps}")
    steps = int(steps)
    schedule, clip = _sampler_settings(network, noise_schedule, clip)
    x, unbatch = _as_batch(y)
    if not np.all(np.isfinite(x)):
        raise ValueError("indi_sample: y contains NaN or infinite values")
    rng = np.random.default_rng(seed)
    if eps > 0:
        x = x + eps * rng.standard_normal(x.shape, dtype=np.float32)  # x_1 = y + sigma_1 n, sigma_1 = eps
    batch = x.shape[0]
    trajectory = [unbatch(x.copy())] if return_trajectory else None
    for i in tqdm(range(steps), desc="InDI steps", disable=not progress, leave=False):
        t = (steps - i) / steps
        ratio = 1.0 / (steps - i)  # delta / t, exact: the last step has ratio 1
        t_vec = np.full((batch,), t, np.float32)
        pred = np.asarray(network([x, t_vec], training=False), dtype=np.float32)
        x = ratio * pred + (1.0 - ratio) * x
        if stochastic and eps > 0 and i < steps - 1:
            t_next = (steps - i - 1) / steps
            # Brownian increment: what the carried noise (1 - delta/t) sigma_t lacks of sigma_{t-delta}
            var = noise_std(t_next, eps, schedule) ** 2 - ((1.0 - ratio) * noise_std(t, eps, schedule)) ** 2
            if var > 1e-12 * eps**2:  # zero for the linear schedule (up to rounding)
                x = x + np.float32(np.sqrt(var)) * rng.standard_normal(x.shape, dtype=np.float32)
        if clip and i == steps - 1:
            x = np.clip(x, -1.0, 1.0)  # an unbounded head: clip only the result
        if return_trajectory:
            trajectory.append(unbatch(x.copy()))
    out = unbatch(x)
    return (out, trajectory) if return_trajectory else out
