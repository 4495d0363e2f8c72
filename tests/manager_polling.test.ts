import { test } from "node:test";
import assert from "node:assert/strict";
import { Poller } from "../src/managers/polling.ts";

/** One wait of `poller` on a condition that never holds: how many times the condition was asked. */
function asksWhenEmpty(poller: Poller): number {
  let asked = 0;
  assert.equal(poller.poll(() => (asked++, false)), false);
  return asked;
}

// The manager's two sides spin for a moment before they park, and back off while the spins come up empty:
// spinning every time made 1.1–1.6k dict pairs/s from a child at load 4–6 on this 2-core VM, backing off 5–6k
// (bench/managers.ts). A wait that only looks asks its condition once; a spin asks it at least 64 times.
test("manager polling: after an empty spin, 1, 2, 4 … at most 64 waits only look before the next spin", () => {
  const poller = new Poller(0.05);
  assert.ok(asksWhenEmpty(poller) >= 64, "the first wait spins");
  const looks: number[] = [];
  for (let spins = 0; spins < 8; spins++) {
    let looked = 0;
    while (asksWhenEmpty(poller) === 1) looked++;
    looks.push(looked);
  }
  assert.deepEqual(looks, [1, 2, 4, 8, 16, 32, 64, 64]);
});

test("manager polling: a spin that finds its condition makes the next wait spin again", () => {
  const poller = new Poller(0.05);
  assert.ok(asksWhenEmpty(poller) >= 64, "an empty spin");
  assert.equal(asksWhenEmpty(poller), 1, "so the next wait only looks");
  let asked = 0;
  assert.equal(poller.poll(() => ++asked === 10), true, "this one spins until the condition holds");
  assert.equal(asked, 10);
  assert.ok(asksWhenEmpty(poller) >= 64, "and the next one spins too");
});
