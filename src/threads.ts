/**
 * The worker threads processes run on: the entry every worker starts from,
 * and where its thread comes from, a new one (`spawn`) or the spare worker
 * started ahead of need (`forkserver`, Python's fork server).
 *
 * @module
 */
import { adapter, childFlag, type SpawnOptions, type ThreadHandle } from "./adapters/mod.ts";

/**
 * The module a worker starts from (`bootstrap.ts`, its JavaScript twin, or
 * the one file of an app bundle), and the library's main module (`mod.ts`,
 * or that same bundle), as they record themselves. A child loads the
 * bootstrap and its target's module, which imports the library from the
 * same URLs, so it holds one copy of each module it uses and no other.
 */
let bootstrap: string | undefined;
let library: string | undefined;
/** The entry of a new worker, and of a spare. */
const entries: [URL?, URL?] = [];

/**
 * Called by `bootstrap.ts` with its own URL.
 *
 * @example
 * ```ts
 * import { locateBootstrap } from "./threads.ts";
 * locateBootstrap(new URL("./bootstrap.ts", import.meta.url).href);
 * ```
 */
export function locateBootstrap(url: string): void {
  bootstrap ??= url;
}

/**
 * Called by `mod.ts` with its own URL.
 *
 * @example
 * ```ts
 * import { locateLibrary } from "./threads.ts";
 * locateLibrary(new URL("../mod.ts", import.meta.url).href);
 * ```
 */
export function locateLibrary(url: string): void {
  library ??= url;
}

/**
 * The library's main module, as `mod.ts` recorded it: a child imports it
 * before it revives the library's objects, whose kinds its modules register.
 *
 * @example
 * ```ts
 * import { libraryModule } from "./threads.ts";
 * console.log(libraryModule()); // mod.ts's URL, once mod.ts is loaded
 * ```
 */
export function libraryModule(): string | undefined {
  return library;
}

/**
 * Every worker starts from a two-statement data: module rather than a file of
 * ours: no file has to survive bundling or transpiling, and a bundled app's
 * child loads that same bundle. Not awaited, so the entry is no async module
 * (Node 24 aborts when a worker evaluating one is terminated). A spare
 * (`preload`) goes on to load the whole library while it waits, as Python's
 * fork server has imported it: most targets' modules import the library.
 */
function workerEntry(preload: boolean): URL {
  if (!bootstrap || !library) throw new Error("the library was not loaded through its main module (mod.ts)");
  const made = entries[preload ? 1 : 0];
  if (made) return made;
  const flag = `globalThis[Symbol.for(${JSON.stringify(childFlag.description)})] = true;`;
  const start = preload
    ? `import(${JSON.stringify(bootstrap)}).then(() => import(${JSON.stringify(library)}));`
    : `import(${JSON.stringify(bootstrap)});`;
  const url = new URL(`data:text/javascript,${encodeURIComponent(`${adapter.workerPrelude ?? ""}${flag} ${start}`)}`);
  entries[preload ? 1 : 0] = url;
  return url;
}

/**
 * A worker started ahead of need, as Python's forkserver: it loads the
 * bootstrap, then the library, and waits for a bootstrap message. Until a
 * process takes it, it is unref'd: it never holds the program open (hence no
 * "forkserver" where a worker cannot be unref'd).
 */
interface Spare {
  thread: ThreadHandle;
  /** The process that took it. */
  owner?: SpawnOptions;
}

let spare: Spare | undefined;

function startSpare(): Spare {
  const started: Spare = {
    thread: adapter.spawn(workerEntry(true), {
      name: "forkserver",
      onMessage: (data) => started.owner?.onMessage(data),
      onEnd: (end) => {
        if (started.owner) started.owner.onEnd(end);
        else if (spare === started) spare = undefined;
      },
    }),
  };
  started.thread.keepAlive(false);
  return started;
}

/**
 * Ends the spare worker, if one waits: back on "spawn", it is no longer wanted.
 *
 * @example
 * ```ts
 * import { retireSpare } from "./threads.ts";
 * retireSpare();
 * ```
 */
export function retireSpare(): void {
  spare?.thread.terminate();
  spare = undefined;
}

/**
 * The thread a process starts on: a new one, or with `warm` the spare, even
 * one that is still loading (it is ahead of a new one all the same), and
 * then a spare for the next start.
 *
 * @example
 * ```ts
 * import { startThread } from "./threads.ts";
 * const thread = startThread(false, { name: "Process-1", onMessage() {}, onEnd() {} });
 * thread.terminate();
 * ```
 */
export function startThread(warm: boolean, options: SpawnOptions): ThreadHandle {
  if (!warm) return adapter.spawn(workerEntry(false), options);
  const taken = spare ?? startSpare();
  spare = startSpare();
  taken.owner = options;
  return taken.thread;
}
