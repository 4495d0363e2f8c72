/**
 * The resource sharer: how the SharedArrayBuffers behind this library's
 * shared objects (a Connection, Queue, Lock, Value, Event …) travel inside a
 * queue item or a pipe message, whose bytes cannot hold them. Python's
 * `resource_sharer` does this for a Connection only (a Lock or a Queue sent
 * through a queue raises there); here every object whose reduction is made of
 * plain data and SharedArrayBuffers travels, and so does a bare
 * SharedArrayBuffer or a view of one.
 *
 * The sender parks the buffers with the main process before the bytes are
 * written (so they are there whenever the bytes can be read), and the bytes
 * carry a name; the receiver takes the buffers by that name. The main process
 * keeps them, not the sender as Python's does: a sender that ended (or is
 * blocked) before its item is read costs nothing, and every process reaches
 * the main one directly over a port of its own (`portForEachChild`), whoever
 * started it. A receiver may be inside a synchronous `getSync`/`recvSync`, so
 * a worker waits for the answer in `Atomics.wait` and takes it with
 * `receiveWaiting` (Deno's `receiveMessageOnPort` takes from Web ports too),
 * and the main process, which may not block, drains the ports itself.
 *
 * Why not the shared-memory arena (one SharedArrayBuffer every process gets
 * at start, where a name resolves with no message at all): the objects would
 * have to live in it from birth, so every shared class would allocate there,
 * free there when the last process drops it (the GC of every process, and a
 * sub-allocator for 4-byte Lock cells under the 2,048-block limit), and a
 * growable arena slows every view. Parking touches no class: each keeps the
 * `[reduce]` it has for `args`.
 *
 * What is parked is handed out once, as Python's resource sharer does: a
 * queue item or a pipe message is received once. Buffers of an item that is
 * never received stay with the main process until the program ends.
 *
 * @module
 */
import { adapter } from "./adapters/mod.ts";
import { unref } from "./ports.ts";
import { hasEnded, ownPid, portForEachChild } from "./process.ts";

/** What a process sends to the main process's sharer. */
type ToSharer =
  | { t: "park"; id: string; buffers: SharedArrayBuffer[] }
  | { t: "unpark"; id: string }
  | { t: "fetch"; id: string; bell: SharedArrayBuffer }
  | { t: "client"; pid: number; port: MessagePort };

/** The sharer's answer to a fetch, rung on the fetcher's bell once posted. */
interface Fetched {
  id: string;
  buffers?: SharedArrayBuffer[];
}

const inMain = adapter.parent() === null;

// ---- The main process: the sharer itself ------------------------------------

const parked = new Map<string, SharedArrayBuffer[]>();
/** Every process's port to here, with its pid. */
const clients = new Map<MessagePort, number>();
/** Fetches met while draining, answered once the drain is over. */
let deferred: [MessagePort, ToSharer & { t: "fetch" }][] = [];
let draining = false;

function serve(port: MessagePort, pid: number): void {
  clients.set(port, pid);
  port.onmessage = (event: MessageEvent) => handle(port, event.data as ToSharer);
  // What holds the program open is the work that waits for an item, not the sharer.
  unref(port);
}

function handle(port: MessagePort, message: ToSharer): void {
  switch (message.t) {
    case "park":
      parked.set(message.id, message.buffers);
      return;
    case "unpark":
      parked.delete(message.id);
      return;
    case "client":
      serve(message.port, message.pid);
      return;
    case "fetch":
      if (draining) deferred.push([port, message]);
      else answer(port, message);
  }
}

/**
 * Takes, without the event loop, everything processes posted here: a park
 * is posted before its bytes are written, so after a drain every item that
 * can be read has its buffers here. Ports of processes that ended are closed
 * once drained (their park messages stay readable after they end).
 */
function drain(): void {
  draining = true;
  try {
    for (let progress = true; progress;) {
      progress = false;
      for (const port of [...clients.keys()]) {
        for (let got; (got = adapter.receiveWaiting(port));) {
          handle(port, got.message as ToSharer);
          progress = true;
        }
      }
    }
    for (const [port, pid] of clients) {
      if (hasEnded(pid)) (clients.delete(port), port.close());
    }
  } finally {
    draining = false;
  }
  const waiting = deferred;
  deferred = [];
  for (const [port, message] of waiting) answer(port, message);
}

function take(id: string): SharedArrayBuffer[] | undefined {
  if (!parked.has(id)) drain();
  const buffers = parked.get(id);
  parked.delete(id);
  return buffers;
}

function answer(port: MessagePort, message: ToSharer & { t: "fetch" }): void {
  const fetched: Fetched = { id: message.id, buffers: take(message.id) };
  port.postMessage(fetched);
  const bell = new Int32Array(message.bell);
  Atomics.store(bell, 0, 1);
  Atomics.notify(bell, 0);
}

// ---- Every other process: a client ------------------------------------------

/** This process's port to the main one, given at start. */
let own: MessagePort | undefined;
const bell = new Int32Array(new SharedArrayBuffer(4));
let parkedHere = 0;

function ownPort(what: string): MessagePort {
  if (own) return own;
  throw new Error(`${what}: this worker was not started by Process, so it cannot reach the main process's sharer`);
}

portForEachChild((pid) => {
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
 * Parks `buffers` with the main process and returns the name to fetch them
 * by. Call it before the bytes that carry the name can be read.
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
  else {
    const message: ToSharer = { t: "park", id, buffers };
    ownPort(what).postMessage(message);
  }
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
  const buffers = inMain ? take(id) : ask(id, what);
  if (!buffers) {
    throw new Error(
      `cannot receive ${what}: it was received once already. A shared object sent through a queue or a pipe ` +
        "is handed out once, as Python's resource sharer does; send it again for each receiver",
    );
  }
  return buffers;
}

function ask(id: string, what: string): SharedArrayBuffer[] | undefined {
  const port = ownPort(`receive ${what}`);
  Atomics.store(bell, 0, 0);
  const message: ToSharer = { t: "fetch", id, bell: bell.buffer as SharedArrayBuffer };
  port.postMessage(message);
  for (;;) {
    const got = adapter.receiveWaiting(port);
    if (got) return (got.message as Fetched).buffers;
    // Rung after the answer is posted; the main process answers from its event loop.
    Atomics.wait(bell, 0, 0, 1000);
  }
}
