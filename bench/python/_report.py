"""The one output format of every script here, and how a figure is sampled.

Each figure is the median of RUNS timed runs after WARMUP unrecorded ones, as bench/measure.ts does for
ours, and carries its samples and its slowest run, so bench/run.ts can show both beside ours.
"""

import json
import platform
import statistics

RUNS = 7
WARMUP = 1


def sample(measure, runs=RUNS, warmup=WARMUP):
    """Calls measure() warmup times unrecorded, then runs times; returns what the timed runs returned."""
    for _ in range(warmup):
        measure()
    return [measure() for _ in range(runs)]


def figure(name, unit, samples, better, note=None):
    """One figure: the median of samples, its slowest run (lowest rate or longest time) and the samples."""
    slowest = min(samples) if better == "higher" else max(samples)
    out = {"name": name, "unit": unit, "value": round(statistics.median(samples), 3),
           "slowest": round(slowest, 3), "samples": [round(s, 3) for s in samples]}
    if note:
        out["note"] = note
    return out


def emit(bench, figures):
    """Prints the report: one line of JSON on stdout."""
    print(json.dumps({
        "bench": bench,
        "runtime": "python " + platform.python_version(),
        "figures": figures,
    }))
