/**
 * The child's side of a process start: the module every worker starts from.
 * It listens for the parent's bootstrap, becomes the process it describes,
 * loads the target's module, runs the target and ends the thread with its
 * exit code. A child loads this module and what its target's module imports,
 * and the rest of the library only when it receives the library's objects.
 *
 * @module
 */
import { adapter, childFlag } from "./adapters/mod.ts";
import { adoptFence } from "./fence.ts";
import { adoptInherited, adoptOwnPort, currentProcess, prepared, reportUncaught, runExitTasks } from "./lifecycle.ts";
import { info } from "./logging.ts";
import { adoptPidTable } from "./pids.ts";
import { endChildren } from "./launch.ts";
import { adoptIdentity, adoptProcess, Process } from "./process.ts";
import { type Bootstrap, claimStart, isBootstrap, RUNNING } from "./process_protocol.ts";
import { load } from "./reduction.ts";
import { resolveClass, resolveTarget } from "./spawn.ts";
import { locateBootstrap } from "./threads.ts";

/**
 * In a worker thread: waits for the parent's bootstrap, which the parent
 * posted when it created the worker, and runs it. The adapter's port has
 * held it since the worker's entry ran (Deno drops the messages a worker
 * receives before it listens; see `Adapter.workerPrelude`).
 */
function serveParent(): void {
  const port = adapter.parent();
  if (!port) throw new Error("the worker entry was loaded on the main thread");
  port.onMessage((data) => {
    if (isBootstrap(data)) void runChild(data);
  });
}

async function runChild(boot: Bootstrap): Promise<never> {
  // Called off by a stop that came first: the parent has reported the end, and no code of the user's may run.
  if (!claimStart(boot.begun)) return adapter.exit(1);
  adoptIdentity(boot);
  adoptPidTable(boot.pids, boot.pid);
  adoptFence(boot.fence);
  adoptInherited(boot.inherited);
  if (boot.port) adoptOwnPort(boot.port);
  if (boot.environment) adapter.setEnvironment?.(boot.environment);
  adapter.onUncaught((error) => {
    reportUncaught(currentProcess().name, error);
    adapter.exit(1);
  });
  let code = 0;
  try {
    // The target's module first, so that a function in the args is found there by reference; the args are
    // revived even when that import fails, so that the handles they hold (a Connection's) are closed at exit.
    const found = Promise.all([
      boot.subclass ? resolveClass(boot.subclass) : Process,
      boot.target ? resolveTarget(boot.target) : undefined,
    ]);
    await found.catch(() => {});
    // The modules that register the kinds of the library's objects, for a target module that does not load them.
    if (boot.library) await import(boot.library);
    const args = load(boot.args.data, boot.args.reduced) as unknown[];
    const fields = load(boot.fields.data, boot.fields.reduced);
    const [type, resolved] = await found;
    const process = adoptProcess(type, fields, args, resolved);
    await prepared();
    adapter.parent()!.post(RUNNING);
    info("child process calling self.run()");
    await process.run();
  } catch (error) {
    reportUncaught(currentProcess().name, error);
    code = 1;
  }
  info("process shutting down");
  // As Python's exit handler: daemonic children are stopped, the others awaited, then the finalizers run.
  await endChildren();
  await runExitTasks();
  info("process exiting with exitcode %d", code);
  return adapter.exit(code);
}

// Every worker starts from this module (see `workerEntry` in threads.ts): in an app bundle, the bundle's URL.
locateBootstrap(import.meta.url);

// In a worker started from that entry: serve the parent's bootstrap. It is delivered once the modules loaded
// here (in a bundle, every module of the library) have been evaluated and have registered their kinds.
if ((globalThis as Record<symbol, unknown>)[childFlag]) {
  delete (globalThis as Record<symbol, unknown>)[childFlag];
  serveParent();
}
