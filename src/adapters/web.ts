/**
 * Web Workers, as Deno and Bun (and browsers) have them. A Web Worker has no
 * reliable exit event: Deno sends none, Bun's `close` says 0 after terminate().
 * So a worker that ends itself posts an end marker first, carrying its exit
 * code; the parent treats the marker, an `error` event or terminate() as the end.
 *
 * @module
 */
import type { ParentPort, SpawnOptions, ThreadEnd, ThreadHandle } from "./types.ts";

const END = "@mp/end";

interface EndMarker {
  [END]: number;
}

function isEnd(data: unknown): data is EndMarker {
  return typeof data === "object" && data !== null && END in data;
}

/** Starts a module Web Worker; `keepAlive` is the runtime's ref/unref, where it has one. */
export function spawnWebWorker(
  url: URL,
  options: SpawnOptions,
  keepAlive: (worker: Worker, alive: boolean) => void,
): ThreadHandle {
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
    const data = event.data;
    if (isEnd(data)) end({ code: data[END] });
    else options.onMessage(data);
  };
  // Without preventDefault an uncaught error in the worker ends the parent too.
  worker.onerror = (event: ErrorEvent) => {
    event.preventDefault();
    end({ code: 1, error: event.error ?? new Error(event.message) });
  };
  // Bun's exit event; it carries process.exit()'s code.
  worker.addEventListener("close", (event) => end({ code: (event as Event & { code?: number }).code ?? 1 }));
  return {
    post: (data, transfer) => worker.postMessage(data, transfer ?? []),
    terminate: () => queueMicrotask(() => end({ code: 1 })),
    keepAlive: (alive) => keepAlive(worker, alive),
  };
}

const scope = globalThis as unknown as {
  postMessage(data: unknown, transfer?: Transferable[]): void;
  addEventListener(type: string, listener: (event: Event) => void): void;
};

/** The worker side of a Web Worker: its own global scope is the port to the parent. */
export const webParentPort: ParentPort = {
  post: (data, transfer) => scope.postMessage(data, transfer ?? []),
  onMessage: (listener) => scope.addEventListener("message", (event) => listener((event as MessageEvent).data)),
};

/** Posts the end marker that {@linkcode spawnWebWorker} waits for. */
export function postEnd(code: number): void {
  const marker: EndMarker = { [END]: code };
  webParentPort.post(marker);
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
