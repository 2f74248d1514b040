"""What both PyTorch references share: timing a training step as `latent-lab bench` does."""

import statistics
import time


def time_steps(step, warmup, steps):
    """Run `step` `warmup` times untimed, then `steps` times; the bench's JSON fields, in ms."""
    for _ in range(warmup):
        step()
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        step()
        times.append((time.perf_counter() - start) * 1e3)
    return {
        "ms_per_step_median": statistics.median(times),
        "ms_per_step_min": min(times),
        "ms_per_step_max": max(times),
    }
