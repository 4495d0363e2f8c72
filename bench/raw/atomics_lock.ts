// The cheapest cross-worker lock the platform allows: uncontended cost inside
// one worker, and two workers fighting over it with Atomics.wait.

import { type RawWorker, spawnRaw } from "./worker.ts";
import { emit, median, nextMessage, type Report, report, REPS, sampled, terminateAll, WAIT_MS } from "./util.ts";

const SOLO_N = 10_000_000;
const PER_WORKER = 100_000;
const COUNT = 1;
const START = 3;

function expectCmd(m: { cmd?: string }, cmd: string): void {
  if (m?.cmd !== cmd) throw new Error(`expected ${cmd}, got ${JSON.stringify(m)}`);
}

interface Round {
  opsPerSec: number;
  handoffsPerSec: number;
  waits: number;
  timeouts: number;
}

async function contendedRound(a: RawWorker, b: RawWorker): Promise<Round> {
  const sab = new SharedArrayBuffer(4 * Int32Array.BYTES_PER_ELEMENT);
  const i32 = new Int32Array(sab);
  a.post({ cmd: "contend", sab, n: PER_WORKER, id: 1 });
  b.post({ cmd: "contend", sab, n: PER_WORKER, id: 2 });
  expectCmd(await nextMessage(a, "worker a to be ready"), "ready");
  expectCmd(await nextMessage(b, "worker b to be ready"), "ready");
  const doneA = nextMessage(a, "worker a to finish");
  const doneB = nextMessage(b, "worker b to finish");
  const t0 = performance.now();
  Atomics.store(i32, START, 1);
  Atomics.notify(i32, START);
  const [ra, rb] = await Promise.all([doneA, doneB]);
  const seconds = (performance.now() - t0) / 1000;
  expectCmd(ra, "done");
  expectCmd(rb, "done");
  const total = Atomics.load(i32, COUNT);
  if (total !== 2 * PER_WORKER) throw new Error(`lost updates: count ${total}, expected ${2 * PER_WORKER}`);
  return {
    opsPerSec: total / seconds,
    handoffsPerSec: (ra.handoffs + rb.handoffs) / seconds,
    waits: ra.waits + rb.waits,
    timeouts: ra.timeouts + rb.timeouts,
  };
}

export async function atomicsLock(): Promise<Report> {
  const url = new URL("./atomics_lock_worker.ts", import.meta.url);
  const a = spawnRaw(url);
  const b = spawnRaw(url);
  try {
    const soloSab = new SharedArrayBuffer(4 * Int32Array.BYTES_PER_ELEMENT);
    a.post({ cmd: "solo", sab: soloSab, n: SOLO_N, reps: REPS });
    // 8 × 10M acquire+release: 30 s was not enough on this VM under load (load average 18).
    const solo = await nextMessage(a, "the uncontended loop", 4 * WAIT_MS);
    expectCmd(solo, "solo");

    await contendedRound(a, b); // warm-up: JIT both workers' loops first
    const rounds: Round[] = [];
    for (let r = 0; r < REPS; r++) rounds.push(await contendedRound(a, b));
    const waits = median(rounds.map((r) => r.waits));
    const timeouts = rounds.reduce((s, r) => s + r.timeouts, 0);

    return report("atomics_lock", [
      sampled(
        "atomics_lock_uncontended",
        "ops/s",
        solo.rates,
        `median of ${REPS} x ${SOLO_N} acquire+release (compareExchange / store+notify) in one worker`,
        1,
      ),
      sampled(
        "atomics_lock_contended",
        "ops/s",
        rounds.map((r) => r.opsPerSec),
        `median of ${REPS}; 2 workers x ${PER_WORKER} acquire/increment/release, total checked exact`,
        1,
      ),
      sampled(
        "atomics_lock_handoffs",
        "handoffs/s",
        rounds.map((r) => r.handoffsPerSec),
        `same runs: times the lock changed hands; median ${waits} Atomics.wait calls per run, ${timeouts} timed out`,
        1,
      ),
    ]);
  } finally {
    await terminateAll([a, b]);
  }
}

if (import.meta.main) emit(await atomicsLock());
