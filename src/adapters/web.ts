/**
 * Web Workers, as Deno (and browsers) have them. A Web Worker has no exit
 * event, so the parent treats the end marker, an `error` event or
 * terminate() as the end.
 *
 * @module
 */
import { endCode, endMarker } from "./end.ts";
import type { ParentPort, SpawnOptions, ThreadEnd, ThreadHandle } from "./types.ts";

/** Starts a module Web Worker. Deno's cannot be unref'd: `keepAlive` does nothing. */
export function spawnWebWorker(url: URL, options: SpawnOptions): ThreadHandle {
  const worker = new Worker(url, { type: "module", name: options.name });
  let ended = false;
  const end = (result: ThreadEnd) => {
    if (ended) return;
    ended = true;
    worker.terminate();
    options.onEnd(result);
  };
  // Attached before anything can await: Deno drops messages that arrive before a listener.
  worker.onmessage = (event: MessageEvent) => {
    const code = endCode(event.data);
    if (code === undefined) options.onMessage(event.data);
    else end({ code });
  };
  // Without preventDefault an uncaught error in the worker ends the parent too.
  worker.onerror = (event: ErrorEvent) => {
    event.preventDefault();
    end({ code: 1, error: event.error ?? new Error(event.message) });
  };
  return {
    post: (data, transfer) => worker.postMessage(data, transfer ?? []),
    // Deno's terminate() does not stop a thread busy in synchronous code or blocked in Atomics.wait.
    terminate: () => queueMicrotask(() => end({ code: 1, mayRun: true })),
    keepAlive: () => {},
  };
}

const scope = globalThis as unknown as {
  postMessage(data: unknown, transfer?: Transferable[]): void;
  addEventListener(type: string, listener: (event: Event) => void): void;
  removeEventListener(type: string, listener: (event: Event) => void): void;
};

/** Where {@linkcode HOLD_EARLY_MESSAGES} keeps what arrived before the port had a listener. */
const EARLY = "@mp/multiprocessing.early";

/** What the entry's listener held, and that listener. */
interface Early {
  held: unknown[];
  listener(event: MessageEvent): void;
}

/**
 * The prelude of a worker's entry (see `Adapter.workerPrelude`): a listener
 * attached before any await, which holds the messages that come before the
 * library's port listens. Deno drops a message that reaches a worker before
 * it has a listener, and the library's listener is attached once its modules
 * have loaded; the parent posts the bootstrap right after `new Worker()`
 * (measured: 1 in 40 such messages lost without this prelude, none of 200
 * with it).
 */
export const HOLD_EARLY_MESSAGES: string = `{const e=globalThis[Symbol.for(${
  JSON.stringify(EARLY)
})]={held:[]};e.listener=(m)=>e.held.push(m.data);addEventListener("message",e.listener);}`;

/** The worker side of a Web Worker: its own global scope is the port to the parent. */
export const webParentPort: ParentPort = {
  post: (data, transfer) => scope.postMessage(data, transfer ?? []),
  onMessage(listener) {
    scope.addEventListener("message", (event) => listener((event as MessageEvent).data));
    const key = Symbol.for(EARLY);
    const early = (globalThis as Record<symbol, Early | undefined>)[key];
    if (!early) return;
    delete (globalThis as Record<symbol, Early | undefined>)[key];
    scope.removeEventListener("message", early.listener as (event: Event) => void);
    // In microtasks: ahead of any message still to come (a task), and after the module that listens has run.
    for (const data of early.held) queueMicrotask(() => listener(data));
  },
};

/** Posts the end marker that {@linkcode spawnWebWorker} waits for. */
export function postEnd(code: number): void {
  webParentPort.post(endMarker(code));
}

/** Routes uncaught errors and unhandled rejections in a Web Worker to `handler`. */
export function onUncaughtInWebWorker(handler: (error: unknown) => void): void {
  scope.addEventListener("error", (event) => {
    event.preventDefault();
    handler((event as ErrorEvent).error ?? new Error((event as ErrorEvent).message));
  });
  scope.addEventListener("unhandledrejection", (event) => {
    event.preventDefault();
    handler((event as PromiseRejectionEvent).reason);
  });
}
