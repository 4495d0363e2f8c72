"""Manager().dict() proxy round trips made from a child process."""

import multiprocessing as mp
import time

from _report import emit, figure, sample

N = 20_000
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

        def one_child():
            child = mp.Process(target=hammer, args=(d, N, results))
            child.start()
            seconds = results.get(timeout=TIMEOUT)
            child.join(TIMEOUT)
            assert child.exitcode == 0, child.exitcode
            return seconds

        samples = sample(one_child)
    emit("manager", [
        figure("manager_dict_set_get", "pairs/s", [N / s for s in samples], "higher",
               f"child process: d[k] = v then d[k] on a Manager().dict() proxy, {N} times; a set+get pair is two proxy round trips"),
        figure("manager_proxy_call", "us", [s / (2 * N) * 1e6 for s in samples], "lower",
               "same runs, per single proxy call"),
    ])


if __name__ == "__main__":
    mp.set_start_method("spawn")
    main()
