/**
 * The resource sharer: how the SharedArrayBuffers behind this library's
 * shared objects (a Connection, Queue, Lock, Value, Event …) travel inside a
 * queue item or a pipe message, whose bytes cannot hold them. Python's
 * `resource_sharer` does this for a Connection only (a Lock or a Queue sent
 * through a queue raises there); here every object whose reduction is made of
 * plain data and SharedArrayBuffers travels, and so does a bare
 * SharedArrayBuffer or a view of one.
 *
 * The sender parks the buffers with the main process, and writes the bytes,
 * which carry a name, once the main process holds them (a round trip per
 * item from a worker); the receiver takes the buffers by that name. The main
 * process keeps them, not the sender as Python's does: a sender that ended
 * (or is blocked) before its item is read costs nothing, and every process reaches
 * the main one directly over a port of its own (`portForEachChild`), whoever
 * started it. A receiver may be inside a synchronous `getSync`/`recvSync`, so
 * a worker waits for each answer in `Atomics.wait` and takes it with
 * `receiveNow` (Deno's `receiveMessageOnPort` takes from Web ports too);
 * the main process, which may not block, never waits: it holds the buffers
 * of every item that can be read.
 *
 * Why not the shared-memory arena (one SharedArrayBuffer every process gets
 * at start, where a name resolves with no message at all): the objects would
 * have to live in it from birth, so every shared class would allocate there,
 * free there when the last process drops it (the GC of every process, and a
 * sub-allocator for 4-byte Lock cells under the 2,048-block limit). Parking
 * touches no class: each keeps the `[reduce]` it has for `args`.
 *
 * What is parked is handed out once, as Python's resource sharer does: a
 * queue item or a pipe message is received once. Buffers of an item that is
 * never received stay with the main process until the program ends; but a
 * sender that ends before it has taken the answer to its park never wrote the
 * bytes that name it, so that parking is dropped (`settle`). A receiver that
 * ends while it waits for its fetch's answer takes its item with it, as any
 * killed `get` does: the sharer handed the buffers to the answer, which dies
 * with the port.
 *
 * @module
 */
import { adapter } from "./adapters/mod.ts";
import { unref } from "./ports.ts";
import { portForEachChild } from "./lifecycle.ts";
import { hasEnded, ownPid } from "./pids.ts";
import { beginCommit, endCommit } from "./fence.ts";

/**
 * A question to the main process's sharer: answered on the same port, then
 * `bell` (the asker's {@linkcode Bell}) is rung. `asked` numbers the
 * process's questions, so that the sharer can tell whether this one's answer
 * was taken.
 */
interface Ask {
  bell: SharedArrayBuffer;
  asked: number;
}

/** What a process sends to the main process's sharer. */
type ToSharer =
  | ({ t: "park"; id: string; buffers: SharedArrayBuffer[] } & Ask)
  | { t: "unpark"; id: string }
  | ({ t: "fetch"; id: string } & Ask)
  | { t: "client"; pid: number; port: MessagePort };

/**
 * The cells of a process's bell, an Int32Array of its own: `RUNG`, set by the
 * sharer once an answer is on the port; `TAKEN`, the number of the last
 * question whose answer the process took, stored in a commit (fence.ts).
 */
const RUNG = 0;
const TAKEN = 1;

/** The sharer's answer: to a fetch, the buffers (none when they were taken already); to a park, nothing. */
interface Answer {
  id: string;
  buffers?: SharedArrayBuffer[];
}

const inMain = adapter.parent() === null;

// ---- The main process: the sharer itself ------------------------------------

const parked = new Map<string, SharedArrayBuffer[]>();
/** Every process's port to here, with its pid. */
const clients = new Map<MessagePort, number>();

/**
 * Serves a process's port from the event loop. Never read with
 * `receiveNow` here: Deno's port takes its next message off the channel
 * before dispatching it, so a message can be neither readable nor handled
 * yet (bench/transfer.ts, a Lock in each of 20,000 items, lost parkings so on
 * Deno 2.9 when the main process drained its ports itself). Hence a park is
 * answered before its bytes are written: whoever reads them finds the
 * buffers here.
 */
function serve(port: MessagePort, pid: number): void {
  reapEnded();
  clients.set(port, pid);
  port.onmessage = (event: MessageEvent) => handle(port, event.data as ToSharer);
  // What holds the program open is the work that waits for an item, not the sharer.
  unref(port);
}

/** When each client's process was first seen ended. */
const endedSince = new Map<MessagePort, number>();

/** How long a port of an ended process stays open: what it posted before it ended is handled meanwhile. */
const REAP_AFTER_MS = 10_000;

/**
 * Closes the ports of processes that ended a while ago. Not at once: an
 * ended process's last messages (the port of a child it started) may still
 * wait for the event loop, and a closed port drops them.
 */
function reapEnded(): void {
  const now = performance.now();
  for (const [port, pid] of clients) {
    if (!hasEnded(pid)) continue;
    const since = endedSince.get(port);
    if (since === undefined) endedSince.set(port, now);
    else if (now - since > REAP_AFTER_MS) (clients.delete(port), endedSince.delete(port), port.close());
  }
}

/**
 * A parking answered to a process that may not have taken the answer yet.
 * If that process ends first it never wrote the bytes that name the parking
 * (it writes them only after taking the answer), so nobody can ever fetch it:
 * it is dropped, or a sender killed while it waited would leave its buffers
 * here until the program ends. One per port: a process asks one question at
 * a time.
 */
interface Unclaimed {
  id: string;
  pid: number;
  bell: Int32Array;
  asked: number;
}
const unclaimed = new Map<MessagePort, Unclaimed>();
/** The next look at `unclaimed`, while it holds any; every look waits twice as long, up to `SETTLE_MAX_MS`. */
let settling: ReturnType<typeof setTimeout> | undefined;
let settleMs = 0;
const SETTLE_MAX_MS = 250;

/**
 * Forgets the parkings whose answer was taken, drops those whose process
 * ended without taking it. A live process takes its answer within
 * microseconds of the bell, and an ended one is reported ended within
 * milliseconds, so the looks stop soon: a timer that holds the program open
 * that long does no harm.
 */
function settle(): void {
  settling = undefined;
  for (const [port, entry] of unclaimed) {
    // Ended first: the fence (fence.ts) is raised before a process is reported ended, and taking an answer is a
    // commit, so once it has ended the TAKEN read next is final.
    const ended = hasEnded(entry.pid);
    if (Atomics.load(entry.bell, TAKEN) >= entry.asked) unclaimed.delete(port);
    else if (ended) (unclaimed.delete(port), parked.delete(entry.id));
  }
  if (unclaimed.size === 0) return void (settleMs = 0);
  settleMs = Math.min(SETTLE_MAX_MS, Math.max(1, settleMs * 2));
  settling = setTimeout(settle, settleMs);
}

function handle(port: MessagePort, message: ToSharer): void {
  switch (message.t) {
    case "park":
      parksHeard++;
      parked.set(message.id, message.buffers);
      unclaimed.set(port, {
        id: message.id,
        pid: clients.get(port)!,
        bell: new Int32Array(message.bell),
        asked: message.asked,
      });
      settling ??= setTimeout(settle, 0);
      return answer(port, message.bell, { id: message.id });
    case "unpark":
      parked.delete(message.id);
      return;
    case "client":
      return serve(message.port, message.pid);
    case "fetch":
      return answer(port, message.bell, { id: message.id, buffers: take(message.id) });
  }
}

function take(id: string): SharedArrayBuffer[] | undefined {
  const buffers = parked.get(id);
  parked.delete(id);
  return buffers;
}

function answer(port: MessagePort, bell: SharedArrayBuffer, reply: Answer): void {
  port.postMessage(reply);
  const cell = new Int32Array(bell);
  Atomics.store(cell, RUNG, 1);
  Atomics.notify(cell, RUNG);
}

// ---- Every other process: a client ------------------------------------------

/** This process's port to the main one, given at start. */
let own: MessagePort | undefined;
const bell = new Int32Array(new SharedArrayBuffer(8));
let parkedHere = 0;
let asked = 0;

function ownPort(what: string): MessagePort {
  if (own) return own;
  throw new Error(`${what}: this worker was not started by Process, so it cannot reach the main process's sharer`);
}

portForEachChild((pid, daemon) => {
  // A daemon's port lives as long as the program may: it must not hold it open once it has carried a message
  // (Deno: see the adapter's beforeUnrefPort; a daemon loads what it needs anyway).
  if (daemon) adapter.beforeUnrefPort?.();
  const { port1, port2 } = new MessageChannel();
  if (inMain) serve(port1, pid);
  else {
    const message: ToSharer = { t: "client", pid, port: port1 };
    ownPort("start a process").postMessage(message, [port1]);
  }
  return port2;
}, (port) => {
  own = port;
});

/**
 * Sends `message` to the main process and waits for its answer, blocking
 * this worker: the main process answers from its event loop, and rings the
 * bell once the answer is on the port.
 */
function ask(message: ToSharer & Ask, what: string): Answer {
  const port = ownPort(what);
  Atomics.store(bell, RUNG, 0);
  port.postMessage(message);
  for (;;) {
    const got = adapter.receiveNow(port);
    if (got) {
      // A commit: a process already reported ended (a Deno thread terminated while it waited runs on) ends here,
      // before it takes a parking that the sharer then drops (see `settle`).
      beginCommit();
      Atomics.store(bell, TAKEN, message.asked);
      endCommit();
      return got.message as Answer;
    }
    Atomics.wait(bell, RUNG, 0, 1000);
  }
}

/**
 * Parks `buffers` with the main process and returns the name to fetch them
 * by. Returns once the main process holds them: call it before the bytes
 * that carry the name can be read.
 *
 * @example
 * ```ts
 * const id = park([new SharedArrayBuffer(4)], "put(item)");
 * const [buffer] = fetchParked(id, "get()");
 * ```
 */
export function park(buffers: SharedArrayBuffer[], what: string): string {
  const id = `${ownPid()}.${++parkedHere}`;
  if (inMain) parked.set(id, buffers);
  else ask({ t: "park", id, buffers, bell: bell.buffer as SharedArrayBuffer, asked: ++asked }, what);
  return id;
}

/**
 * Gives back what {@linkcode park} parked, when the bytes that name it were
 * not sent after all (encoding failed after parking).
 *
 * @example
 * ```ts
 * unpark(park([new SharedArrayBuffer(4)], "send(obj)"));
 * ```
 */
export function unpark(id: string): void {
  if (inMain) parked.delete(id);
  else {
    const message: ToSharer = { t: "unpark", id };
    own?.postMessage(message);
  }
}

/**
 * The buffers parked as `id`, taken from the main process: synchronously, in
 * any process. `what` names the object in the error.
 *
 * @throws {Error} when they were taken already (the same bytes received twice).
 *
 * @example
 * ```ts
 * const [buffer] = fetchParked(park([new SharedArrayBuffer(4)], "put(item)"), "a Lock");
 * ```
 */
export function fetchParked(id: string, what: string): SharedArrayBuffer[] {
  const buffers = inMain
    ? take(id)
    : ask({ t: "fetch", id, bell: bell.buffer as SharedArrayBuffer, asked: ++asked }, `receive ${what}`).buffers;
  if (!buffers) {
    throw new Error(
      `cannot receive ${what}: it was received once already. A shared object sent through a queue or a pipe ` +
        "is handed out once, as Python's resource sharer does; send it again for each receiver",
    );
  }
  return buffers;
}

/** Park requests of other processes the main process has handled. */
let parksHeard = 0;

/**
 * What the main process's sharer holds and has heard (0 in any other
 * process): for the tests of what a process killed in the middle of a
 * transfer leaves.
 *
 * @example
 * ```ts
 * import { sharerCounts } from "./resource_sharer.ts";
 * console.log(sharerCounts()); // { parked: 0, parksHeard: 0 } before anything was sent
 * ```
 */
export function sharerCounts(): { parked: number; parksHeard: number } {
  return { parked: parked.size, parksHeard };
}
