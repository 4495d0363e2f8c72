"""A Connection inside each queue item, child -> main: Python sends it through its resource sharer."""

import multiprocessing as mp
import time

from _report import emit, figure, sample

N = 200
TIMEOUT = 60


def produce(q, n, done):
    ends = []
    for _ in range(n):
        mine, theirs = mp.Pipe()
        q.put(theirs)
        # The resource sharer serves the end from this process: keep it (and this process) until it is taken.
        ends.append((mine, theirs))
    done.wait(TIMEOUT)


def one_run():
    q = mp.Queue()
    done = mp.Event()
    child = mp.Process(target=produce, args=(q, N, done))
    child.start()
    q.get(timeout=TIMEOUT)
    t0 = time.perf_counter()
    for _ in range(N - 1):
        q.get(timeout=TIMEOUT)
    elapsed = time.perf_counter() - t0
    done.set()
    child.join(TIMEOUT)
    assert child.exitcode == 0, child.exitcode
    return (N - 1) / elapsed


def main():
    emit("transfer", [figure("connection_in_queue_item", "items/s", sample(one_run), "higher")])


if __name__ == "__main__":
    mp.set_start_method("spawn")
    main()
