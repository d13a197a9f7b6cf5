"""Does today's code apply the same edits as a committed run did? A check that needs no model.

Re-runs a committed harness run's agentedit rows through the current code with a stand-in backend that records
every request (no generation), and compares, probe by probe, which edits were applied. The scope figures of a
run depend only on these decisions, and with the same facts block and greedy decoding the model's answers
depend only on them too; so equal decisions mean the committed figures still hold for the current code.

    python evals/routing_parity.py --run standard-qwen2.5-coder-0.5b-instruct --dataset counterfact-edit \\
        --probe-limit 100

Writes evals/results/<run-name>/{results.json,summary.md}.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any, Sequence

ROOT = Path(__file__).resolve().parents[1]


class Recorder:
    """A backend that answers every request with one fixed word and counts the requests."""

    name = "stand-in/recorder"

    def __init__(self) -> None:
        from agentedit.backends.base import Capabilities

        self.capabilities = Capabilities()
        self.calls = 0

    def _done(self) -> Any:
        from agentedit.backends.base import Completion

        self.calls += 1
        return Completion(text="unknown", finish_reason="stop", model=self.name, usage={})

    def chat(self, messages: Sequence[dict[str, Any]], **params: Any) -> Any:
        return self._done()

    async def achat(self, messages: Sequence[dict[str, Any]], **params: Any) -> Any:
        return self._done()

    def complete(self, prompt: str, **params: Any) -> Any:
        return self._done()

    async def acomplete(self, prompt: str, **params: Any) -> Any:
        return self._done()

    def close(self) -> None:
        pass


def main() -> None:
    from agentedit.evaluation import read_rows
    from agentedit.evaluation.config import RunConfig
    from agentedit.evaluation.runner import Runner

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--run", required=True, help="a committed run folder under evals/results/")
    ap.add_argument("--dataset", required=True)
    ap.add_argument("--method", default="agentedit")
    ap.add_argument("--probe-limit", type=int, default=100)
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--run-name", default=None)
    args = ap.parse_args()

    committed_dir = ROOT / "evals" / "results" / args.run
    run = json.loads((committed_dir / "run.json").read_text())
    opts = run["config"]
    old = {(r["case_id"], r["probe_idx"], r["kind"]): r for r in read_rows(committed_dir)
           if r["dataset"] == args.dataset and r["method"] == args.method and r.get("size", "all") == "all"}
    cfg = RunConfig(datasets=[args.dataset], methods=[args.method], limit=opts.get("limit"), protocol=opts["protocol"],
                    scoring=opts["scoring"], max_tokens=opts.get("max_tokens"), suite="routing-parity",
                    data_dir=args.data_dir, probe_limit=args.probe_limit)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        backend = Recorder()
        Runner(cfg, tmp, backend=backend).run()
        new = {(r["case_id"], r["probe_idx"], r["kind"]): r for r in read_rows(Path(tmp))
               if r["dataset"] == args.dataset and r["method"] == args.method and r.get("size", "all") == "all"}
    wall = time.perf_counter() - started
    shared = sorted(set(old) & set(new))
    same = [k for k in shared if sorted(old[k]["applied"]) == sorted(new[k]["applied"])]
    differ = [k for k in shared if k not in set(same)]
    by_kind = Counter(k[2] for k in shared)
    differ_by_kind = Counter(k[2] for k in differ)
    result = {"suite": "routing-parity", "committed_run": args.run, "dataset": args.dataset, "method": args.method,
              "probe_limit": args.probe_limit, "probes_compared": len(shared), "identical": len(same),
              "different": len(differ), "by_kind": {k: {"probes": n, "different": differ_by_kind[k]} for k, n in by_kind.items()},
              "examples": [{"probe": list(k), "committed": old[k]["applied"], "now": new[k]["applied"],
                            "prompt": old[k]["prompt"]} for k in differ],
              "model_calls": backend.calls, "wall_s": round(wall, 1), "machine": "2 cores, CPU"}
    out = ROOT / "evals" / "results" / (args.run_name or f"routing-parity-{args.dataset}")
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(result, indent=2) + "\n")
    lines = [f"# Routing parity: {args.dataset}, {args.method}, against `{args.run}`", "",
             f"{len(shared)} probes compared (first {args.probe_limit} cases, every edit of the first {opts.get('limit')} "
             f"cases in memory, {opts['protocol']}): **{len(same)} identical, {len(differ)} different** applied-edit sets. "
             f"Stand-in backend, {backend.calls} requests recorded, no generation; {wall:.0f} s on {result['machine']}.", "",
             "| probe kind | probes | different |", "|---|---|---|"]
    lines += [f"| {k} | {v['probes']} | {v['different']} |" for k, v in sorted(result["by_kind"].items())]
    (out / "summary.md").write_text("\n".join(lines) + "\n")
    print(json.dumps({k: result[k] for k in ("probes_compared", "identical", "different", "wall_s")}))


if __name__ == "__main__":
    main()
