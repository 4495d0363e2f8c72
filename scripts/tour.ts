/**
 * `npm start`: the seed tour. Every ported seed program, on every runtime,
 * each under a heading, with what it printed.
 */
import { examples } from "./examples.ts";
import { execute, runtimes } from "./runtimes.ts";

for (const example of examples()) {
  for (const runtime of runtimes) {
    console.log(`\n── ${example.file} on ${runtime.name} ${"─".repeat(Math.max(0, 50 - example.file.length))}`);
    const outcome = await execute([...runtime.run, example.file], { timeout: 60_000, echo: true });
    if (outcome.code !== 0) {
      console.log(`(exit code ${outcome.code}${outcome.timedOut ? ", killed after 60 s" : ""})`);
      process.exitCode = 1;
    }
  }
}
