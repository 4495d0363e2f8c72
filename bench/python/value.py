"""multiprocessing.Value under its lock, contended by two processes, and bare Lock cost."""

import multiprocessing as mp
import time

from _report import emit, figure, sample

PER_PROC = 10_000
PROCS = 2
UNCONTENDED = 1_000_000
TIMEOUT = 60



def bump(v, n, ready, go, done):
    ready.set()
    if not go.wait(TIMEOUT):
        raise SystemExit("never got the go signal")
    for _ in range(n):
        with v.get_lock():
            v.value += 1
    done.set()


def contended():
    v = mp.Value("i", 0)
    go = mp.Event()
    readies = [mp.Event() for _ in range(PROCS)]
    dones = [mp.Event() for _ in range(PROCS)]
    procs = [mp.Process(target=bump, args=(v, PER_PROC, r, go, d)) for r, d in zip(readies, dones)]
    for p in procs:
        p.start()
    for r in readies:
        assert r.wait(TIMEOUT), "child did not start"
    t0 = time.perf_counter()
    go.set()
    # Stop the clock on the children's own signal: joining would add process teardown.
    for d in dones:
        assert d.wait(TIMEOUT), "child did not finish"
    t1 = time.perf_counter()
    for p in procs:
        p.join(TIMEOUT)
        assert p.exitcode == 0, p.exitcode
    # The whole point of the lock: a lost update here means the figure is meaningless.
    assert v.value == PROCS * PER_PROC, v.value
    return PROCS * PER_PROC / (t1 - t0)


def lock_uncontended():
    lock = mp.Lock()
    acquire, release = lock.acquire, lock.release
    t0 = time.perf_counter()
    for _ in range(UNCONTENDED):
        acquire()
        release()
    return UNCONTENDED / (time.perf_counter() - t0)


def value_uncontended():
    v = mp.Value("i", 0)
    t0 = time.perf_counter()
    for _ in range(UNCONTENDED):
        with v.get_lock():
            v.value += 1
    rate = UNCONTENDED / (time.perf_counter() - t0)
    assert v.value == UNCONTENDED
    return rate


def main():
    inc = sample(contended)
    lock = sample(lock_uncontended)
    solo = sample(value_uncontended)
    emit("value", [
        figure("value_contended_increments", "ops/s", inc, "higher",
               f"{PROCS} processes x {PER_PROC} locked increments, from go to both done"),
        figure("lock_uncontended", "ops/s", lock, "higher", "acquire()+release() pairs of mp.Lock in one process"),
        figure("value_uncontended_increments", "ops/s", solo, "higher",
               "with v.get_lock(): v.value += 1 in one process"),
    ])


if __name__ == "__main__":
    mp.set_start_method("spawn")
    main()
