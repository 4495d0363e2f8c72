/**
 * A test that leaves a child process running fails: registered once per test
 * file, this checks after every test, and stops what it finds so that the
 * rest of the file can go on.
 */
import { afterEach } from "node:test";
import { activeChildren } from "../mod.ts";

export function checkNoLeaks(): void {
  afterEach(async () => {
    const left = activeChildren();
    if (left.length === 0) return;
    for (const child of left) child.kill();
    await Promise.all(left.map((child) => child.join(5_000)));
    throw new Error(`the test left ${left.length} process(es) running: ${left.map(String).join(", ")}`);
  });
}
