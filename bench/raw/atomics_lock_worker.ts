// A lock made of one Int32 in a SharedArrayBuffer: compareExchange 0 -> 1 to
// take it, store 0 + notify to give it back, Atomics.wait while it is taken.
import { workerPort } from "./worker.ts";

const LOCK = 0;
const COUNT = 1;
const OWNER = 2;
const START = 3;
// A wait that times out just re-checks the lock, so the bound cannot break
// correctness; it only guarantees no thread sleeps forever.
const WAIT_MS = 100;
const START_GIVE_UP_MS = 30_000;

const parent = workerPort();
let waits = 0;
let timeouts = 0;

function acquire(i32: Int32Array): void {
  while (Atomics.compareExchange(i32, LOCK, 0, 1) !== 0) {
    waits++;
    if (Atomics.wait(i32, LOCK, 1, WAIT_MS) === "timed-out") timeouts++;
  }
}

function release(i32: Int32Array): void {
  Atomics.store(i32, LOCK, 0);
  Atomics.notify(i32, LOCK, 1);
}

function solo(i32: Int32Array, n: number): number {
  const t0 = performance.now();
  for (let k = 0; k < n; k++) {
    acquire(i32);
    release(i32);
  }
  return n / ((performance.now() - t0) / 1000);
}

function contend(i32: Int32Array, n: number, id: number): void {
  const deadline = performance.now() + START_GIVE_UP_MS;
  // Both workers block here so the parent can release them at the same
  // moment; otherwise the first one up could finish before the second starts.
  while (Atomics.load(i32, START) === 0) {
    if (performance.now() > deadline) throw new Error("never got the start signal");
    Atomics.wait(i32, START, 0, WAIT_MS);
  }
  let handoffs = 0;
  for (let k = 0; k < n; k++) {
    acquire(i32);
    // Deliberately not atomic: only the lock keeps this count exact.
    i32[COUNT] = i32[COUNT] + 1;
    if (i32[OWNER] !== id) {
      handoffs++;
      i32[OWNER] = id;
    }
    release(i32);
  }
  parent.post({ cmd: "done", handoffs, waits, timeouts });
}

parent.onMessage((m) => {
  const i32 = new Int32Array(m.sab as SharedArrayBuffer);
  waits = 0;
  timeouts = 0;
  if (m.cmd === "solo") {
    solo(i32, m.n); // unrecorded: the JIT compiles the loop first
    const rates: number[] = [];
    for (let r = 0; r < m.reps; r++) rates.push(solo(i32, m.n));
    parent.post({ cmd: "solo", rates, waits });
  } else if (m.cmd === "contend") {
    parent.post({ cmd: "ready" });
    contend(i32, m.n, m.id);
  }
});
