/**
 * Manager: dict set+get round trips made from a child process, beside Python
 * 3.11's Manager doing the same (bench/python/manager.py) and beside the raw
 * primitive a proxy over ports would be bound by: two MessageChannel round
 * trips per pair (bench/raw/pingpong.ts), measured in the same run.
 */
import { type DictProxy, Manager, Process, Value } from "../mod.ts";
import { pingpong } from "./raw/pingpong.ts";
import { printRow, pythonSamples, sample, samplesOf } from "./measure.ts";

const N = 20_000;

/** In the child: `N` set+get pairs after one warm-up call; the seconds taken go into `seconds`. */
export async function hammer(d: DictProxy<string, number>, seconds: Value<"d">): Promise<void> {
  await d.set("warm", 0);
  const t0 = performance.now();
  for (let i = 0; i < N; i++) {
    await d.set(`k${i % 100}`, i);
    if ((await d.get(`k${i % 100}`)) !== i) throw new Error("the manager dict lost a write");
  }
  seconds.value = (performance.now() - t0) / 1_000;
}

if (import.meta.main) {
  let samples: number[];
  {
    await using manager = await Manager();
    const d = manager.dict<string, number>();
    samples = await sample(async () => {
      const seconds = new Value("d", 0);
      const child = new Process({ target: hammer, args: [d, seconds] });
      child.start();
      await child.join();
      if (child.exitCode !== 0) throw new Error(`the child failed with exit code ${child.exitCode}`);
      return N / seconds.value;
    });
  }
  const roundTrips = samplesOf(await pingpong(), "pingpong_messagechannel");
  printRow({
    area: "managers",
    name: "dict set+get round trips from a child",
    unit: "pairs/s",
    better: "higher",
    ours: samples,
    against: {
      "raw MessageChannel, 2 round trips": roundTrips.map((us) => 1e6 / (2 * us)),
      "python 3.11 Manager": pythonSamples("manager.py", "manager_dict_set_get"),
    },
  });
}
