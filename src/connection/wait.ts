/**
 * Python's `multiprocessing.connection.wait`: the objects of a list that are
 * ready, waiting up to a timeout for one to be. A socket connection or a
 * pipe end is ready when `recv` would not wait (a message, or end of file);
 * a process is ready when it has ended.
 *
 * @module
 */
import { Connection } from "../connection.ts";
import { Process, whenEnded } from "../process.ts";
import { readWait, type WaitOptions, within } from "../wait.ts";
import { SocketConnection } from "./socket.ts";

/** What {@linkcode wait} watches. */
export type Waitable = SocketConnection<unknown> | Connection<unknown> | Process;

/** A ready timer's period while a wait holds the program open; any period works, it only keeps the loop alive. */
const KEEP_ALIVE_MS = 60_000;

async function readyNow(object: Waitable): Promise<boolean> {
  if (object instanceof SocketConnection) return object.closed ? false : object.ready();
  if (object instanceof Process) return object.exitCode !== null;
  return object.closed ? false : await object.poll(0);
}

function whenReady(object: Waitable, signal: AbortSignal): Promise<unknown> {
  if (object instanceof SocketConnection) return object.whenReady();
  if (object instanceof Process) return whenEnded(object);
  return object.poll({ timeout: Infinity, signal }).catch(() => {});
}

/**
 * Resolves the objects of `objects` that are ready, in their order, once at
 * least one is or `timeout` ms passed (then possibly none; default: no
 * limit). The program stays alive while it waits.
 *
 * @throws {TypeError} for an object that is no connection or process, or a closed connection.
 * @throws {RangeError} for a negative or NaN timeout.
 *
 * @example
 * ```ts
 * import { Pipe } from "@mp/multiprocessing";
 * import { wait } from "@mp/multiprocessing/connection";
 * const [a, b] = Pipe();
 * await a.send("hi");
 * console.log((await wait([b], 1_000)).length); // 1
 * ```
 */
export async function wait<W extends Waitable>(objects: Iterable<W>, timeout?: WaitOptions | null): Promise<W[]> {
  const list = [...objects];
  for (const [i, object] of list.entries()) {
    if (!(object instanceof SocketConnection || object instanceof Connection || object instanceof Process)) {
      throw new TypeError(`wait: objects[${i}] is no Connection or Process`);
    }
    if (!(object instanceof Process) && object.closed) {
      throw new TypeError(`wait: objects[${i}] is a closed connection`);
    }
  }
  const limit = readWait(timeout, "wait");
  const check = async () => {
    const flags = await Promise.all(list.map(readyNow));
    return list.filter((_, i) => flags[i]);
  };
  const now = await check();
  if (now.length > 0 || limit.timeout === 0 || list.length === 0 && limit.timeout === Infinity && !limit.signal) {
    return now;
  }
  const stop = new AbortController();
  const keepAlive = setInterval(() => {}, KEEP_ALIVE_MS);
  try {
    await within(Promise.race(list.map((object) => whenReady(object, stop.signal))), limit);
  } finally {
    clearInterval(keepAlive);
    stop.abort();
  }
  return check();
}
