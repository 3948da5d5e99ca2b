"""Speed of the InDI network on this machine: training steps, inference, and how close to peak.

Run from the repository root::

    TF_CPP_MIN_LOG_LEVEL=2 .venv/bin/python benchmarks/speed.py [--preset default] [--repeats 5]

Writes ``benchmarks/results/speed.json`` (atomically) with

* ``matmul_peak_gflops``: the best rate of a large float32 ``tf.matmul`` (2 n^3
  FLOPs), the yardstick for "peak" on this CPU, measured at the start and the
  end of the same run (the better reading is used);
* ``flops_per_pixel``: FLOPs of one network pass per output pixel, counted
  analytically from the convolution layers (``model.conv_flops_per_pixel``);
* ``train``: seconds per optimiser step (the preset's batch of crops) and
  the achieved GFLOP/s (forward + backward taken as 3x the forward FLOPs);
* ``inference``: for several ways of running the forward pass (eager Keras
  call, ``tf.function``, XLA ``jit_compile``, one big image or a batch of
  tiles), seconds per megapixel per network pass, GFLOP/s and the ratio to
  the matmul peak.

* ``loop``: the project's training loop (:func:`indi4d.training.train_indi`)
  on a real pairs folder (``--pairs``, default ``runs/default/pairs`` when it
  exists), seconds per step inside its epochs and over the whole call
  (validation, checkpoints and tracing included), each as a ratio to the raw
  graph step measured in the same run, just before and just after the loop
  (their mean; ``loop.ratio_in_epochs``, ``loop.ratio_whole_call``);
* ``train.bf16``: the raw step under Keras's ``mixed_bfloat16`` policy
  (oneDNN uses AVX512-BF16 where the CPU has it: ``machine.cpu_flags``), or why
  it could not run.

Timings are medians over ``--repeats`` runs after a warm-up call (tracing and
compilation excluded, reported separately). On a machine shared with other
work the numbers are noisy; rerun on an idle machine for the record. A
fraction of peak above 1 is possible: oneDNN's convolution kernels can beat
TensorFlow's (Eigen) matmul, and the training FLOPs are an estimate (backward
pass = 2x forward).
"""

import argparse
import json
import os
import statistics
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _median_time(fn, repeats):
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def matmul_peak(tf, n=3072, repeats=5):
    """Best float32 matmul rate (GFLOP/s) of an n x n product, 2 n^3 FLOPs each."""
    a = tf.random.uniform((n, n), dtype=tf.float32)
    b = tf.random.uniform((n, n), dtype=tf.float32)
    mm = tf.function(lambda x, y: tf.reduce_sum(tf.matmul(x, y)), autograph=False)  # reduce: forces the full product
    mm(a, b).numpy()
    best = min(_time_once(lambda: mm(a, b).numpy()) for _ in range(repeats))
    return 2.0 * n**3 / best / 1e9


def _time_once(fn):
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def loop_speed(pairs_dir, preset, epochs=3, steps_per_epoch=100):
    """Seconds per step of the real training loop on ``pairs_dir`` (a throw-away model folder).

    Returns ``seconds_per_step_in_epochs`` (median over the epochs after the
    first, whose time includes tracing: the steps and the batches alone) and
    ``seconds_per_step_whole_call`` (everything the call did, per step).
    """
    import tempfile

    from indi4d import model_folder
    from indi4d.training import train_indi

    with tempfile.TemporaryDirectory() as tmp:
        summary = train_indi(pairs_dir, Path(tmp) / "model", preset=preset, seed=0, max_minutes=None,
                             overrides={"epochs": epochs, "steps_per_epoch": steps_per_epoch}, progress=False)
        history = model_folder.read_history(Path(tmp) / "model")
    per_epoch = history["seconds"][1:] or history["seconds"]
    return {"pairs_dir": os.path.relpath(pairs_dir, ROOT), "epochs": epochs, "steps_per_epoch": steps_per_epoch,
            "epoch_seconds": history["seconds"],
            "seconds_per_step_in_epochs": round(statistics.median(per_epoch) / steps_per_epoch, 4),
            "seconds_per_step_whole_call": summary["seconds_per_step"],
            "first_epoch_seconds": history["seconds"][0]}


def raw_step_speed(tf, keras, network_fn, b, c, repeats, jit=False):
    """Median seconds of one raw InDI optimiser step (graph or XLA) on random crops, and the first call's."""
    import numpy as np

    from indi4d.core.indi import indi_objective

    rng = np.random.default_rng(0)
    lq = tf.constant(rng.uniform(-1, 1, (b, c, c, 1)).astype(np.float32))
    hq = tf.constant(rng.uniform(-1, 1, (b, c, c, 1)).astype(np.float32))
    network = network_fn()
    opt = keras.optimizers.Adam(1e-4)
    opt.build(network.trainable_variables)

    def step(lq, hq, seed):
        with tf.GradientTape() as tape:
            loss = indi_objective(network, lq, hq, seed)
        grads = tape.gradient(loss, network.trainable_variables)
        opt.apply_gradients(zip(grads, network.trainable_variables))
        return loss

    fn = tf.function(step, jit_compile=jit)
    seed = tf.constant([0, 0], tf.int32)
    warm = _time_once(lambda: fn(lq, hq, seed).numpy())
    return _median_time(lambda: fn(lq, hq, seed).numpy(), repeats), warm


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="default", choices=["tiny", "default", "paper"])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--size", type=int, default=512, help="side of the whole-image inference test")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "speed.json"))
    parser.add_argument("--pairs", default=str(ROOT / "runs" / "default" / "pairs"),
                        help="pairs folder for the training-loop measurement (skipped when absent)")
    args = parser.parse_args(argv)

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras
    import numpy as np
    import tensorflow as tf

    from indi4d.files import atomic_path
    from indi4d.core.model import PRESETS as NET_PRESETS
    from indi4d.core.model import build_unet, conv_flops_per_pixel, count_parameters
    from indi4d.machine import machine_record
    from indi4d.presets import resolve
    from indi4d.training import PRESETS as TRAIN_PRESETS

    train_p = resolve(TRAIN_PRESETS, args.preset)
    net_p = resolve(NET_PRESETS, train_p["network"])
    network = build_unet(**net_p, seed=0)
    flops_px = conv_flops_per_pixel(network)
    peak = matmul_peak(tf, repeats=args.repeats)
    result = {
        "preset": args.preset,
        "network": {**net_p, "dilations": list(net_p["dilations"])},
        "n_params": count_parameters(network),
        "flops_per_pixel": flops_px,
        "matmul_peak_gflops": round(peak, 2),
        "machine": {**machine_record(), "tensorflow": tf.__version__, "keras": keras.__version__},
        "repeats": args.repeats,
    }

    # ---- training step: the raw step (graph, XLA, bf16), then the real loop on real pairs
    b, c = train_p["batch_size"], train_p["crop"]
    train = {}
    for name, jit in (("graph", False), ("xla", True)):
        s, warm = raw_step_speed(tf, keras, lambda: network, b, c, args.repeats, jit)
        gflops = 3.0 * flops_px * b * c * c / s / 1e9  # backward ~ 2x forward
        train[name] = {
            "seconds_per_step": round(s, 4), "first_call_seconds": round(warm, 2),
            "batch": b, "crop": c, "gflops": round(gflops, 2), "fraction_of_peak": round(gflops / peak, 3),
        }
    try:  # bf16 compute, float32 weights: oneDNN's AVX512-BF16 kernels where the CPU has them
        keras.mixed_precision.set_global_policy("mixed_bfloat16")
        s, warm = raw_step_speed(tf, keras, lambda: build_unet(**net_p, seed=0), b, c, args.repeats)
        train["bf16"] = {"seconds_per_step": round(s, 4), "first_call_seconds": round(warm, 2),
                         "speedup_vs_graph": round(train["graph"]["seconds_per_step"] / s, 3)}
    except Exception as err:  # noqa: BLE001 - a measurement that cannot run says why
        train["bf16"] = {"error": f"{type(err).__name__}: {err}"[:300]}
    finally:
        keras.mixed_precision.set_global_policy("float32")
    if Path(args.pairs).is_dir():
        loop = loop_speed(Path(args.pairs), args.preset, epochs=4)
        # this machine's speed drifts by tens of percent within minutes: the raw step is timed again
        # right after the loop, and the loop is compared with the mean of the two readings
        after, _ = raw_step_speed(tf, keras, lambda: network, b, c, args.repeats)
        raw = (train["graph"]["seconds_per_step"] + after) / 2
        loop["raw_graph_seconds_per_step_before_after"] = [train["graph"]["seconds_per_step"], round(after, 4)]
        loop["raw_graph_seconds_per_step"] = round(raw, 4)
        loop["ratio_in_epochs"] = round(loop["seconds_per_step_in_epochs"] / raw, 3)
        loop["ratio_whole_call"] = round(loop["seconds_per_step_whole_call"] / raw, 3)
        result["loop"] = loop
    else:
        result["loop"] = {"skipped": f"no pairs folder at {args.pairs} (run chapters 01-02 or pass --pairs)"}
    result["train"] = train

    # ---- inference: one pass of the network, several ways
    rng = np.random.default_rng(0)
    n = args.size
    image = rng.uniform(-1, 1, (1, n, n, 1)).astype(np.float32)
    t1 = np.ones(1, np.float32)
    tiles = rng.uniform(-1, 1, (4, n // 2, n // 2, 1)).astype(np.float32)
    t4 = np.ones(4, np.float32)
    graph = tf.function(lambda x, t: network([x, t], training=False), autograph=False)
    xla = tf.function(lambda x, t: network([x, t], training=False), jit_compile=True, autograph=False)
    variants = {
        "eager_whole": (lambda: np.asarray(network([image, t1], training=False)), n * n),
        "graph_whole": (lambda: graph(image, t1).numpy(), n * n),
        "xla_whole": (lambda: xla(image, t1).numpy(), n * n),
        "graph_tiles_4x": (lambda: graph(tiles, t4).numpy(), tiles.shape[0] * (n // 2) ** 2),
        "xla_tiles_4x": (lambda: xla(tiles, t4).numpy(), tiles.shape[0] * (n // 2) ** 2),
    }
    inference = {}
    for name, (fn, pixels) in variants.items():
        warm = _time_once(fn)
        s = _median_time(fn, args.repeats)
        gflops = flops_px * pixels / s / 1e9
        inference[name] = {
            "seconds_per_megapixel": round(s / (pixels / 1e6), 4), "first_call_seconds": round(warm, 2),
            "pixels": pixels, "gflops": round(gflops, 2), "fraction_of_peak": round(gflops / peak, 3),
        }
    result["inference"] = inference

    # the yardstick again: under changing load the better of the two readings is the fairer peak
    peak_end = matmul_peak(tf, repeats=args.repeats)
    result["matmul_peak_gflops_readings"] = [round(peak, 2), round(peak_end, 2)]
    if peak_end > peak:
        scale = peak / peak_end
        for entry in list(train.values()) + list(inference.values()):
            if "fraction_of_peak" in entry:  # the bf16 entry has a speed-up instead (or an error)
                entry["fraction_of_peak"] = round(entry["fraction_of_peak"] * scale, 3)
        peak = peak_end
        result["matmul_peak_gflops"] = round(peak, 2)
    best = max(inference, key=lambda k: inference[k]["fraction_of_peak"])
    result["best_inference"] = {"variant": best, **inference[best]}

    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out) as tmp:
        tmp.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
