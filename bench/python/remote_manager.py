"""A remote BaseManager's dict: set+get pairs from a client process over loopback TCP.

The server is a SyncManager started in its own process on 127.0.0.1 with an authkey, as the docs'
"Using a remote manager" does; the client connects to it. Sequential pairs from one thread, then
8 threads at once (each with its own connection, as Python's proxies have).
"""

import threading
import time
from multiprocessing.managers import SyncManager

from _report import emit, figure, sample

N = 10_000
THREADS = 8


def pairs(d, n, key):
    for i in range(n):
        d[key] = i
        if d.get(key) != i:
            raise SystemExit("remote dict lost a write")


def main():
    server = SyncManager(address=("127.0.0.1", 0), authkey=b"bench")
    server.start()
    client = SyncManager(address=server.address, authkey=b"bench")
    client.connect()
    d = client.dict()
    d["warm"] = 0

    def sequential():
        t0 = time.perf_counter()
        pairs(d, N, "k")
        return N / (time.perf_counter() - t0)

    per_thread = N // THREADS

    def concurrent():
        threads = [threading.Thread(target=pairs, args=(d, per_thread, f"k{t}")) for t in range(THREADS)]
        t0 = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return per_thread * THREADS / (time.perf_counter() - t0)

    one, eight = sample(sequential), sample(concurrent)
    server.shutdown()
    emit("remote_manager", [
        figure("remote_manager_dict_set_get", "pairs/s", one, "higher"),
        figure("remote_manager_dict_set_get_8_threads", "pairs/s", eight, "higher"),
    ])


if __name__ == "__main__":
    main()
