"""multiprocessing.Pipe round-trip latency: main sends, child echoes."""

import multiprocessing as mp
import time

from _report import RUNS, emit, figure

N = 10_000
WARMUP = 1_000
TIMEOUT = 60



def echo(conn):
    while True:
        msg = conn.recv()
        if msg is None:
            return
        conn.send(msg)


def round_trips(conn, n):
    for i in range(n):
        conn.send({"i": i, "s": "x"})
        # poll() bounds the wait; recv() alone would block forever on a dead child.
        if not conn.poll(TIMEOUT):
            raise SystemExit("echo child stopped answering")
        if conn.recv()["i"] != i:
            raise SystemExit("echo out of order")


def main():
    here, there = mp.Pipe()
    child = mp.Process(target=echo, args=(there,))
    child.start()
    round_trips(here, WARMUP)
    samples = []
    for _ in range(RUNS):
        t0 = time.perf_counter()
        round_trips(here, N)
        samples.append((time.perf_counter() - t0) / N * 1e6)
    here.send(None)
    child.join(TIMEOUT)
    assert child.exitcode == 0, child.exitcode
    emit("pipe", [
        figure("pipe_round_trip", "us", samples, "lower"),
    ])


if __name__ == "__main__":
    mp.set_start_method("spawn")
    main()
