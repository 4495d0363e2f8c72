"""Manager().dict() proxy round trips made from a child process."""

import multiprocessing as mp
import statistics
import time

from _report import emit

N = 20_000
REPS = 5
TIMEOUT = 60



def hammer(d, n, results):
    # The first call on an unpickled proxy opens its connection to the manager;
    # do that before the clock starts, as a long-lived child would have.
    d["warm"] = 0
    t0 = time.perf_counter()
    for i in range(n):
        k = f"k{i % 100}"
        d[k] = i
        if d[k] != i:
            raise SystemExit("manager dict lost a write")
    # Timed in the child: the figure is about proxy calls, not process spawn.
    results.put(time.perf_counter() - t0)


def main():
    with mp.Manager() as manager:
        d = manager.dict()
        results = mp.Queue()
        samples = []
        for _ in range(REPS):
            child = mp.Process(target=hammer, args=(d, N, results))
            child.start()
            samples.append(results.get(timeout=TIMEOUT))
            child.join(TIMEOUT)
            assert child.exitcode == 0, child.exitcode
        elapsed = statistics.median(samples)
    emit("manager", [
        {"name": "manager_dict_set_get", "unit": "pairs/s", "value": round(N / elapsed, 1),
         "note": f"child process: d[k] = v then d[k] on a Manager().dict() proxy, {N} times; a set+get pair is two proxy round trips"},
        {"name": "manager_proxy_call", "unit": "us", "value": round(elapsed / (2 * N) * 1e6, 3),
         "note": "same run, per single proxy call"},
    ])


if __name__ == "__main__":
    mp.set_start_method("spawn")
    main()
