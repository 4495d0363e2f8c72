import { test } from "node:test";
import assert from "node:assert/strict";
import { Event, Manager, Process, Queue, RawValue, ShareableList, SharedMemory, SharedMemoryManager } from "../mod.ts";
import { checkNoLeaks } from "./leaks.ts";

checkNoLeaks();

const module = new URL("./fixtures/shared_memory.ts", import.meta.url);

async function run(target: string, ...args: unknown[]): Promise<void> {
  const p = new Process({ target, args, module });
  p.start();
  await p.join(20_000);
  assert.equal(p.exitCode, 0, `${target} ended with exit code ${p.exitCode}`);
}

test(
  "shared memory: a child attaches to a block by name and writes what the parent reads",
  { timeout: 20_000 },
  async () => {
    const shm = new SharedMemory({ create: true, size: 16 });
    assert.match(shm.name, /^psm_[0-9a-f]{8}$/);
    assert.equal(shm.size, 16);
    assert.deepEqual([...shm.buf], new Array(16).fill(0), "a new block reads as zeros");
    await run("writeByName", shm.name, [1, 2, 3]);
    assert.deepEqual([...shm.buf.subarray(0, 4)], [1, 2, 3, 0]);
    shm.close();
    shm.unlink();
  },
);

test("shared memory: a block sent in args is shared, and the child's close leaves the parent's handle", {
  timeout: 20_000,
}, async () => {
  using shm = new SharedMemory({ name: "mp-test-args", create: true, size: 8 });
  await run("writeReceived", shm, 5, 42);
  assert.equal(shm.buf[5], 42);
  shm.unlink();
});

test(
  "shared memory: the parent attaches to a block that a child created after it started",
  { timeout: 20_000 },
  async () => {
    const created = new Event();
    await run("createNamed", "mp-test-from-child", "made by the child", created);
    assert.equal(created.isSet(), true);
    using shm = new SharedMemory({ name: "mp-test-from-child" });
    assert.equal(shm.size, 64);
    assert.equal(new TextDecoder().decode(shm.buf.slice(0, 17)), "made by the child");
    shm.unlink();
  },
);

test(
  "shared memory: names are unique, unlink removes the name, a closed handle refuses buf",
  { timeout: 10_000 },
  () => {
    const shm = new SharedMemory({ name: "mp-test-names", create: true, size: 4 });
    assert.throws(
      () => new SharedMemory({ name: "mp-test-names", create: true, size: 4 }),
      /a block named 'mp-test-names' already exists/,
    );
    const other = new SharedMemory({ name: "mp-test-names" });
    other.buf[0] = 9;
    assert.equal(shm.buf[0], 9);
    other.close();
    other.close();
    assert.throws(() => other.buf, /SharedMemory 'mp-test-names' is closed/);
    shm.unlink();
    assert.throws(() => shm.unlink(), /was already unlinked/);
    assert.throws(() => new SharedMemory({ name: "mp-test-names" }), /no block is named 'mp-test-names'/);
    assert.equal(shm.buf[0], 9, "a handle still open keeps its memory after unlink");
    shm.close();
  },
);

test("shared memory: bad sizes and names throw; freed memory is reused and zeroed", { timeout: 10_000 }, () => {
  assert.throws(() => new SharedMemory({ create: true, size: 0 }), RangeError);
  assert.throws(() => new SharedMemory({ create: true, size: -1 }), /size must be a positive integer/);
  assert.throws(() => new SharedMemory({ create: true, size: 2 ** 32 }), RangeError);
  assert.throws(() => new SharedMemory(), /give the name of a block to attach to/);
  assert.throws(() => new SharedMemory({ name: "x".repeat(200), create: true, size: 1 }), /name is longer than/);
  const first = new SharedMemory({ create: true, size: 1000 });
  first.buf.fill(5);
  const offset = first.buf.byteOffset;
  first.close();
  first.unlink();
  const second = new SharedMemory({ create: true, size: 900 });
  assert.equal(second.buf.byteOffset, offset, "the freed block's memory is reused");
  assert.equal(second.buf.every((byte) => byte === 0), true);
  second.close();
  second.unlink();
  const big = new SharedMemory({ create: true, size: 8 * 1024 * 1024 });
  big.buf[big.size - 1] = 1;
  assert.equal(big.buf[big.size - 1], 1, "the arena grows for a large block");
  big.close();
  big.unlink();
});

test("shareable list: items of every type round-trip, a child edits them by name, the parent sees it", {
  timeout: 20_000,
}, async () => {
  const bytes = new Uint8Array([1, 2, 3]);
  using list = new ShareableList([7, "hello", 2n ** 62n, true, null, bytes, -0.5]);
  assert.equal(list.length, 7);
  assert.deepEqual(list.toArray(), [7, "hello", 2n ** 62n, true, null, bytes, -0.5]);
  assert.equal(list.get(-1), -0.5);
  await run("editList", list.shm.name);
  assert.deepEqual(list.toArray().slice(0, 3), [70, "changed", null]);
  assert.equal(list.count(null), 2);
  assert.equal(list.index(true), 3);
  assert.throws(() => list.index("absent"), /is not in the list/);
  list.shm.unlink();
});

test("shareable list: a list and a RawValue sent in args are shared with the child", { timeout: 20_000 }, async () => {
  using list = new ShareableList([1, 2.5, -3]);
  const flag = new RawValue("B", 0);
  await run("doubleList", list, flag);
  assert.deepEqual(list.toArray(), [2, 5, -6]);
  assert.equal(flag.value, 1);
  list.shm.unlink();
});

test("shareable list: an item must fit its room; bad indexes and types throw", { timeout: 10_000 }, () => {
  using list = new ShareableList(["abc", 1]);
  list.set(0, "12345678");
  assert.equal(list.get(0), "12345678");
  assert.throws(() => list.set(0, "123456789"), /needs 9 bytes, but this place holds 8/);
  assert.throws(() => list.get(2), RangeError);
  assert.throws(() => list.set(-3, 1), /index -3 is out of range for length 2/);
  assert.throws(() => list.set(1, {} as never), TypeError);
  assert.throws(() => new ShareableList([2n ** 64n]), /does not fit in 64 bits/);
  assert.throws(() => new ShareableList(), /give items to create one, or \{ name \} to attach/);
  assert.equal(String(list), `ShareableList(["12345678",1], name='${list.shm.name}')`);
  list.shm.unlink();
});

test("shared memory: 1,100 blocks made and unlinked one at a time, each bigger, reuse the arena", {
  timeout: 20_000,
}, () => {
  const probe = new SharedMemory({ create: true, size: 1 });
  const before = probe.buf.buffer.byteLength;
  probe.close();
  probe.unlink();
  let largestArena = 0;
  for (let i = 0; i < 1_100; i++) {
    const shm = new SharedMemory({ create: true, size: 10_000 + 16 * i });
    shm.buf[shm.size - 1] = 1;
    largestArena = Math.max(largestArena, shm.buf.buffer.byteLength);
    shm.close();
    shm.unlink();
  }
  // Together they are 20 MiB; the arena needs room for one of them at a time.
  assert.ok(largestArena - before < 1024 * 1024, `the arena grew from ${before} to ${largestArena} bytes`);
});

test("shared memory: after 1,024 blocks were all unlinked, a 1 MiB block and a Manager are made", {
  timeout: 30_000,
}, async () => {
  const blocks = Array.from({ length: 1_024 }, (_, i) => new SharedMemory({ create: true, size: 100 + i }));
  for (const shm of blocks) (shm.close(), shm.unlink());
  const big = new SharedMemory({ create: true, size: 1024 * 1024 });
  assert.equal(big.size, 1024 * 1024);
  big.close();
  big.unlink();
  await using manager = await Manager();
  const d = manager.dict([["a", 1]]);
  assert.equal(await d.get("a"), 1);
});

test("shared memory: an unlinked block a terminated child had open gives its memory back", {
  timeout: 20_000,
}, async () => {
  const shm = new SharedMemory({ create: true, size: 1024 * 1024 });
  const offset = shm.buf.byteOffset;
  const attached = new Event();
  const p = new Process({ target: "attachAndHang", args: [shm.name, attached], module });
  p.start();
  assert.equal(await attached.wait(10_000), true);
  p.terminate();
  await p.join(10_000);
  shm.close();
  shm.unlink();
  // The child's handle was never closed by the child: it is closed for it, so the memory is free again.
  const next = new SharedMemory({ create: true, size: 1024 * 1024 });
  assert.equal(next.buf.byteOffset, offset);
  next.close();
  next.unlink();
});

test("shared memory manager: shutdown unlinks every block and list it made, in the parent and in a child", {
  timeout: 20_000,
}, async () => {
  const names = new Queue<string>();
  const made: string[] = [];
  let kept: SharedMemory;
  {
    await using smm = await new SharedMemoryManager().start();
    const shm = smm.SharedMemory(100);
    const list = smm.ShareableList([1, "two", null]);
    assert.equal(shm.size, 100);
    assert.deepEqual(list.toArray(), [1, "two", null]);
    await run("makeThrough", smm, names);
    made.push(shm.name, await names.get({ timeout: 5_000 }), await names.get({ timeout: 5_000 }));
    for (const name of made) assert.doesNotThrow(() => new SharedMemory({ name }).close(), `${name} exists`);
    // The user's own unlink before shutdown is no error at shutdown.
    list.shm.unlink();
    list.shm.close();
    kept = shm;
  }
  for (const name of made) {
    assert.throws(() => new SharedMemory({ name }), /no block is named/, `${name} was unlinked at shutdown`);
  }
  kept.buf[0] = 1; // An open handle keeps its memory after the unlink, as in Python.
  kept.close();
  const smm = new SharedMemoryManager();
  assert.throws(() => smm.SharedMemory(8), /not started; await start\(\) first/);
  await smm.start();
  await smm.shutdown();
  assert.throws(() => smm.ShareableList([1]), /has been shut down/);
  await smm.shutdown();
});

test("shared memory: a block that takes a freed extent whole, as the table's last record, is found by name", {
  timeout: 10_000,
}, () => {
  // Fill the gaps low in the table, so that the records taken below are its last ones.
  const filler = Array.from({ length: 64 }, () => new SharedMemory({ create: true, size: 8 }));
  const [a, b, c] = [0, 1, 2].map(() => new SharedMemory({ create: true, size: 1000 }));
  b.close();
  b.unlink();
  const d = new SharedMemory({ create: true, size: 4000 });
  // Exactly the freed extent's size: it is taken whole, and its record dropped.
  const e = new SharedMemory({ name: "mp-test-exact-fit", create: true, size: 1000 });
  const attached = new SharedMemory({ name: "mp-test-exact-fit" });
  assert.equal(attached.buf.byteOffset, e.buf.byteOffset);
  for (const shm of [...filler, a, c, d, e, attached]) shm.close();
  for (const shm of [...filler, a, c, d, e]) shm.unlink();
});
