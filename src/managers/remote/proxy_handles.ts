/**
 * What a remote manager's proxy is underneath, whatever its class: its
 * handle (the client, the token, the methods, the object's id once the
 * server made it), given back to the server when the proxy is
 * garbage-collected, and the three ways a proxy leaves: a call through its
 * client, its reduction within the program, its Python pickle for the wire.
 * `proxies.ts` builds the proxy classes over these.
 *
 * @module
 */
import type { PyObject } from "../../python/pickle.ts";
import type { Reduction } from "../../reduction.ts";
import type { ManagerClient } from "./client.ts";
import type { Channel } from "./server.ts";
import { type Address, mayHoldProxies, pickleProxy, type Token, walk } from "./protocol.ts";

/** What each remote proxy is: its client, its token, its methods; `ident` resolves once the server made it. */
export interface Handle {
  client: ManagerClient;
  token: Token;
  exposed?: readonly string[];
  proxytype: string;
  ident: Promise<string>;
}

const handles = new WeakMap<object, Handle>();

/** The proxy classes of Python's `multiprocessing.managers`. */
const PYTHON_PROXIES = new Set([
  "AutoProxy",
  "DictProxy",
  "ListProxy",
  "NamespaceProxy",
  "AcquirerProxy",
  "EventProxy",
  "ValueProxy",
  "ConditionProxy",
  "BarrierProxy",
  "ArrayProxy",
  "IteratorProxy",
  "PoolProxy",
]);

// A proxy that is gone gives its reference back, as Python's proxy finalizer does.
const released = new FinalizationRegistry<{ client: ManagerClient; ident: Promise<string> }>(({ client, ident }) => {
  ident.then((id) => client.serverCall("decref", [id])).catch(() => {});
});

/**
 * The handle of a remote proxy.
 *
 * @throws {TypeError} when `proxy` is none.
 * @example
 * ```ts
 * const { client, token } = handleOf(proxy);
 * ```
 */
export function handleOf(proxy: object): Handle {
  const handle = handles.get(proxy);
  if (!handle) throw new TypeError("not a remote manager proxy");
  return handle;
}

/**
 * A call through the proxy's client, once its object exists (and every
 * proxy among `args` has its own). `pipelined`: a method of a dict, list or
 * namespace, which never waits in the server, so it may queue behind other
 * such calls on one shared connection. `pinned`: the connection to call on
 * (a held lock's, see `ManagerClient.takeChannel`).
 *
 * @example
 * ```ts
 * const size = await remoteCall(proxy, "__len__", []);
 * ```
 */
export async function remoteCall(
  proxy: object,
  method: string,
  args: readonly unknown[],
  signal?: AbortSignal,
  pipelined = false,
  pinned?: Channel,
): Promise<unknown> {
  const { client, ident } = handleOf(proxy);
  const id = await ident;
  await proxiesMade(args);
  return await client.call(id, method, args, signal, pipelined, pinned);
}

/**
 * Waits until every proxy inside `values` has its object's id, which its pickle carries.
 *
 * @example
 * ```ts
 * await proxiesMade([proxy]);
 * ```
 */
export async function proxiesMade(values: readonly unknown[]): Promise<void> {
  for (const value of values) {
    if (!mayHoldProxies(value)) continue;
    const pending: Promise<string>[] = [];
    walk(value, (item) => {
      const handle = item !== null && typeof item === "object" ? handles.get(item) : undefined;
      if (handle) pending.push(handle.ident);
      return item;
    });
    await Promise.all(pending);
  }
}

/**
 * Sends a remote proxy within this program: its token and key, and the receiver holds a reference of its own.
 *
 * @example
 * ```ts
 * const { kind, state } = reduceRemote(proxy); // kind: "managers.remote-proxy"
 * ```
 */
export function reduceRemote(proxy: object): Reduction {
  const { client, token, exposed, proxytype } = handleOf(proxy);
  return {
    kind: REMOTE_PROXY,
    state: { address: client.address, authkey: client.authkey, typeid: token.typeid, id: token.id, exposed, proxytype },
  };
}

/**
 * The proxy's Python pickle: `RebuildProxy(proxytype, token, 'pickle', {exposed})`, for the wire;
 * `undefined` for what is no remote proxy.
 *
 * @example
 * ```ts
 * const pickled = pickledProxy(proxy); // a PyObject of multiprocessing.managers.RebuildProxy
 * ```
 */
export function pickledProxy(proxy: object): PyObject | undefined {
  const handle = handles.get(proxy);
  if (!handle) return undefined;
  // Our own proxy types (QueueProxy) are AutoProxies to Python, which makes its class from `exposed`.
  const python = PYTHON_PROXIES.has(handle.proxytype) ? handle.proxytype : "AutoProxy";
  return pickleProxy(python, handle.token, python === "AutoProxy" ? handle.exposed : undefined);
}

/**
 * Which object of which manager a proxy stands for, for `toString()`.
 *
 * @example
 * ```ts
 * describeRemote(proxy); // "<DictProxy object, typeid 'dict' of the manager at [...]>"
 * ```
 */
export function describeRemote(proxy: object): string {
  const { token, proxytype } = handleOf(proxy);
  return `<${proxytype} object, typeid '${token.typeid}' of the manager at ${JSON.stringify(token.address)}>`;
}

/** The state of a remote proxy sent within the program. */
export interface RemoteState {
  address: Address;
  authkey: Uint8Array;
  typeid: string;
  id: string;
  exposed?: string[];
  proxytype: string;
}

/** The reduction kind of a remote proxy sent within the program. */
export const REMOTE_PROXY = "managers.remote-proxy";

/**
 * Records the handle of a new proxy (`base` and, for an AutoProxy, the
 * `Proxy` over it), whose reference is given back once `proxy` is garbage-collected.
 *
 * @example
 * ```ts
 * holdHandle(base, proxy, { client, token, exposed, proxytype, ident });
 * ```
 */
export function holdHandle(base: object, proxy: object, handle: Handle): void {
  handles.set(base, handle);
  handles.set(proxy, handle);
  released.register(proxy, { client: handle.client, ident: handle.ident });
}
