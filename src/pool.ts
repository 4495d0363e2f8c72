/**
 * The pool's public names, as `mod.ts` and `src/contexts.ts` import them;
 * the pool itself is the folder `src/pool/` (see the README's Layout):
 * `pool.ts` the local `Pool`, `surface.ts` the calls shared with the
 * cluster's pool, `results.ts`/`imap.ts` what a submission returns,
 * `options.ts` the checks, `protocol.ts` the wire to the workers,
 * `member.ts` and `worker.ts` the two ends of it, `claims.ts` the memory
 * both ends share.
 *
 * @module
 */
export type { IMapIterator } from "./pool/imap.ts";
export type { ApplyAsyncOptions, MapAsyncOptions, MapOptions, PoolOptions, TaskOptions } from "./pool/options.ts";
export { Pool } from "./pool/pool.ts";
export { AsyncResult } from "./pool/results.ts";
export { PoolCalls } from "./pool/surface.ts";
export { poolWorker } from "./pool/worker.ts";
