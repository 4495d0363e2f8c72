/**
 * Which class a proxy gets, by Python's proxy type (`DictProxy`,
 * `AcquirerProxy`, …; an AutoProxy for any other), and the making of one:
 * from a `create` that is on its way, from a `#PROXY` reply, or revived
 * from another process of this program.
 *
 * @module
 */
import { registerKind } from "../../reduction.ts";
import type { ManagerClient } from "./client.ts";
import { RemoteConditionProxy, RemoteLockProxy } from "./lock_proxies.ts";
import { RemotePoolProxy } from "./pool_proxies.ts";
import { type Address, Token } from "./protocol.ts";
import {
  RemoteDictProxy,
  RemoteEventProxy,
  RemoteListProxy,
  RemoteNamespaceProxy,
  RemoteProxy,
  RemoteQueueProxy,
  RemoteValueProxy,
} from "./proxies.ts";
import { holdHandle, REMOTE_PROXY, type RemoteState } from "./proxy_handles.ts";
import { RemoteArrayProxy, RemoteBarrierProxy } from "./sync_proxies.ts";

const proxyClasses: Record<string, new () => object> = {
  DictProxy: RemoteDictProxy,
  ListProxy: RemoteListProxy,
  NamespaceProxy: RemoteNamespaceProxy,
  AcquirerProxy: RemoteLockProxy,
  EventProxy: RemoteEventProxy,
  ValueProxy: RemoteValueProxy,
  QueueProxy: RemoteQueueProxy,
  ConditionProxy: RemoteConditionProxy,
  BarrierProxy: RemoteBarrierProxy,
  ArrayProxy: RemoteArrayProxy,
  PoolProxy: RemotePoolProxy,
};

/** Every property a proxy lacks is a method of the object (but `then`, or awaiting it would call it). */
function autoProxy(base: RemoteProxy): RemoteProxy {
  return new Proxy(base, {
    get(target, key) {
      if (typeof key !== "string" || key in target || key === "then") return Reflect.get(target, key, target);
      return (...args: unknown[]) => target.callMethod(key, args);
    },
  });
}

/**
 * A proxy of `token` through `client`. `ident`: the object's id, or a promise
 * of it while `create` is on its way (a proxy is returned at once, as the
 * in-program manager's are). `owned`: the server counted this proxy's
 * reference already; otherwise it increfs.
 */
export function makeProxy(
  client: ManagerClient,
  token: Token,
  exposed: readonly string[] | undefined,
  proxytype: string,
  owned: boolean,
  ident: Promise<string> = Promise.resolve(token.id),
): object {
  const Class = proxyClasses[proxytype] ?? RemoteProxy;
  const base = new Class();
  const proxy = Class === RemoteProxy ? autoProxy(base as RemoteProxy) : base;
  const held = owned ? ident : ident.then(async (id) => (await client.serverCall("incref", [id]), id));
  void ident.then((id) => (token.id = id), () => {});
  // A failed creation rejects every call, with its reason; it is not also an unhandled rejection.
  held.catch(() => {});
  holdHandle(base, proxy, { client, token, exposed, proxytype, ident: held });
  return proxy;
}

/** Set by the manager module: the client for an address and key in this process. */
let clientFor: (address: Address, authkey: Uint8Array) => ManagerClient = () => {
  throw new Error("the remote manager module is not loaded");
};

/** Lets revived proxies find (or make) this process's client for their manager. */
export function setClientSource(source: (address: Address, authkey: Uint8Array) => ManagerClient): void {
  clientFor = source;
}

registerKind(REMOTE_PROXY, (state) => {
  const { address, authkey, typeid, id, exposed, proxytype } = state as RemoteState;
  return makeProxy(clientFor(address, authkey), new Token(typeid, address, id), exposed, proxytype, false);
});
