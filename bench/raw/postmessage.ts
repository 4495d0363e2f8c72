// One-way postMessage throughput of small objects: worker -> main, and
// worker -> worker over a MessageChannel whose ends were handed to each.

import { type RawWorker, spawnRaw } from "./worker.ts";
import { emit, nextMessage, type Report, report, REPS, sampled, terminateAll, WAIT_MS, withTimeout } from "./util.ts";

const N = 100_000;

function expectCmd(m: { cmd?: string }, cmd: string): void {
  if (m?.cmd !== cmd) throw new Error(`expected ${cmd}, got ${JSON.stringify(m)}`);
}

async function workerToMain(w: RawWorker, n: number): Promise<number> {
  let count = 0;
  const done = new Promise<void>((resolve, reject) => {
    w.onMessage((m) => {
      if (++count < n) return;
      if (m.i === n - 1) resolve();
      else reject(new Error(`last item was ${JSON.stringify(m)}`));
    });
  });
  // Timed from the request, so one parent->worker hop is included; at
  // 100k items it is noise.
  const t0 = performance.now();
  w.post({ cmd: "send", n });
  await withTimeout(done, WAIT_MS, `${n} items from the worker`);
  const elapsed = performance.now() - t0;
  w.onMessage(null);
  return n / (elapsed / 1000);
}

async function workerToWorker(producer: RawWorker, consumer: RawWorker, n: number): Promise<number> {
  consumer.post({ cmd: "expect", n });
  expectCmd(await nextMessage(consumer, "the consumer to arm"), "armed");
  const t0 = performance.now();
  const done = nextMessage(consumer, `${n} items to reach the consumer`);
  producer.post({ cmd: "produce", n });
  expectCmd(await done, "done");
  return n / ((performance.now() - t0) / 1000);
}

export async function postmessage(): Promise<Report> {
  const url = new URL("./postmessage_worker.ts", import.meta.url);
  const producer = spawnRaw(url);
  const consumer = spawnRaw(url);
  try {
    const toMain: number[] = [];
    // One unrecorded pass first so both sides are past the JIT warm-up.
    for (let i = 0; i <= REPS; i++) {
      const rate = await workerToMain(producer, N);
      if (i > 0) toMain.push(rate);
    }

    const ch = new MessageChannel();
    producer.post({ cmd: "peer", port: ch.port1 }, [ch.port1]);
    expectCmd(await nextMessage(producer, "the producer to take its port"), "ok");
    consumer.post({ cmd: "peer", port: ch.port2 }, [ch.port2]);
    expectCmd(await nextMessage(consumer, "the consumer to take its port"), "ok");
    const toWorker: number[] = [];
    for (let i = 0; i <= REPS; i++) {
      const rate = await workerToWorker(producer, consumer, N);
      if (i > 0) toWorker.push(rate);
    }

    return report("postmessage", [
      sampled("postmessage_worker_to_main", "items/s", toMain, `median of ${REPS}, ${N} {i, s: "x"} objects`, 1),
      sampled(
        "postmessage_worker_to_worker",
        "items/s",
        toWorker,
        `median of ${REPS}, ${N} objects over a MessageChannel between two workers`,
        1,
      ),
    ]);
  } finally {
    await terminateAll([producer, consumer]);
  }
}

if (import.meta.main) emit(await postmessage());
