"""A Connection inside each queue item, child -> main: Python sends it through its resource sharer."""

import multiprocessing as mp
import statistics
import time

from _report import emit

N = 200
REPS = 5
TIMEOUT = 60


def produce(q, n, done):
    ends = []
    for _ in range(n):
        mine, theirs = mp.Pipe()
        q.put(theirs)
        # The resource sharer serves the end from this process: keep it (and this process) until it is taken.
        ends.append((mine, theirs))
    done.wait(TIMEOUT)


def main():
    samples = []
    for rep in range(REPS + 1):
        q = mp.Queue()
        done = mp.Event()
        child = mp.Process(target=produce, args=(q, N, done))
        child.start()
        first = q.get(timeout=TIMEOUT)
        t0 = time.perf_counter()
        for _ in range(N - 1):
            q.get(timeout=TIMEOUT)
        elapsed = time.perf_counter() - t0
        done.set()
        child.join(TIMEOUT)
        assert child.exitcode == 0, child.exitcode
        if rep:
            samples.append((N - 1) / elapsed)
    emit("transfer", [
        {"name": "connection_in_queue_item", "unit": "items/s", "value": round(statistics.median(samples))},
    ])


if __name__ == "__main__":
    mp.set_start_method("spawn")
    main()
