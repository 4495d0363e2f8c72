"""multiprocessing.Pool: task overhead (async flood, map, one at a time) and CPU scaling."""

import multiprocessing as mp
import time

from _report import emit, figure, sample

FLOOD = 100_000
MAPPED = 100_000
SERIAL = 2_000
CPU_TASKS = 8
CPU_LOOP = 2_000_000
TIMEOUT = 120



def inc(x):
    return x + 1


def spin(n):
    total = 0
    for i in range(n):
        total += i
    return total


def flood(pool):
    t0 = time.perf_counter()
    pending = [pool.apply_async(inc, (i,)) for i in range(FLOOD)]
    results = [r.get(TIMEOUT) for r in pending]
    elapsed = time.perf_counter() - t0
    assert results[-1] == FLOOD, results[-1]
    return FLOOD / elapsed


def mapped(pool):
    t0 = time.perf_counter()
    results = pool.map(inc, range(MAPPED))
    elapsed = time.perf_counter() - t0
    assert results[-1] == MAPPED, results[-1]
    return MAPPED / elapsed


def serial(pool):
    t0 = time.perf_counter()
    for i in range(SERIAL):
        assert pool.apply(inc, (i,)) == i + 1
    return (time.perf_counter() - t0) / SERIAL * 1e6


def cpu(pool):
    t0 = time.perf_counter()
    results = pool.map(spin, [CPU_LOOP] * CPU_TASKS, chunksize=1)
    elapsed = time.perf_counter() - t0
    assert results == [CPU_LOOP * (CPU_LOOP - 1) // 2] * CPU_TASKS
    return elapsed


def warm(pool, size):
    # Pool() returns before its workers have finished importing this module;
    # make every worker answer once so start-up stays out of the timings.
    pool.map(inc, range(size * 4), chunksize=1)
    # The same full map the timed runs make, as bench/pool.ts warms its contenders.
    pool.map(inc, range(MAPPED))


def main():
    with mp.Pool(2) as pool:
        warm(pool, 2)
        # warm() has run the pool already; a warm-up run of each would only add seconds.
        flood_rate = sample(lambda: flood(pool), warmup=0)
        map_rate = sample(lambda: mapped(pool), warmup=0)
        serial_us = sample(lambda: serial(pool), warmup=0)
        cpu2 = sample(lambda: cpu(pool), warmup=0)
    with mp.Pool(1) as pool:
        warm(pool, 1)
        cpu1 = sample(lambda: cpu(pool), warmup=0)
    emit("pool", [
        figure("pool_apply_async_flood", "tasks/s", flood_rate, "higher",
               f"Pool(2), {FLOOD} apply_async(inc) in flight, then get() all"),
        figure("pool_map", "items/s", map_rate, "higher", f"Pool(2), map(inc, range({MAPPED})), default chunksize"),
        figure("pool_apply_serial", "us", serial_us, "lower",
               f"Pool(2), apply(inc) one at a time, {SERIAL} times; per task"),
        figure("pool_cpu_1", "s", cpu1, "lower", f"Pool(1), {CPU_TASKS} tasks of a {CPU_LOOP}-iteration addition loop"),
        figure("pool_cpu_2", "s", cpu2, "lower", f"Pool(2), same {CPU_TASKS} tasks"),
        figure("pool_cpu_speedup", "x", [one / two for one, two in zip(cpu1, cpu2)], "higher",
               "pool_cpu_1 / pool_cpu_2, run by run"),
    ])


if __name__ == "__main__":
    mp.set_start_method("spawn")
    main()
