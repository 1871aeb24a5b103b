"""Fast-Run: per-target auto-tuning of every conv (DESIGN §8).

- `workloads`: the distinct conv workloads of a model and their stable keys;
- `space`: the candidates of a conv, every applicable algorithm × its `candidates()`;
- `worker` and `measure`: candidates compiled first, then checked against the float64 reference
  and timed one at a time in a killable process with timeouts relative to the best;
- `database`: SQLite records of every candidate, keyed by target fingerprint, threads, workload
  and convir version;
- `tuner`: `convir tune` (progress, budget, resume);
- `records`: what `conv-select-algorithm`/`conv-tile` ask the database (`tuning-db` option,
  `convir.compile(tuning_db=...)`);
- `explain`: `convir explain`, one row per conv.
"""
