"""`hf-ssdd benchmark`: does a distilled set beat simply taking `m` real images? Methods x targets x protocols x seeds.

    hf-ssdd benchmark --config benchmarks/fashion_mnist.yaml

Every method gives a pre-trained model, saved under `output_dir/models/<method>-m<m>-<arch>-seed<s>/` (`scratch`
is the network at its random initialisation). Each model is then scored by

- transfer to every target with every protocol (`finetune`, `linear`): accuracy, by `transfer.run_transfer`;
- the label-free score on held-out source images, which needs no labels at all: `r2`, how well the model's head
  reproduces the teacher's representations (what KRR-ST optimises; only for heads trained on teacher targets), and
  `probe_r2`, how well a ridge regression from its frozen features does (defined for every model).

Each result is one line of `output_dir/results.jsonl`, appended as soon as it exists; a rerun skips every line
already there, and every model folder already saved, so an interrupted benchmark resumes where it stopped.
`results.md` (mean +- std, one row per method, one column per target) and `results.png` are rewritten at the end.

One idea per module, each importing only those before it in this list: `methods` (what each method pre-trains
on), `config` (BenchmarkConfig, typed loading), `results` (rows of results.jsonl, their summary), `resume`
(fingerprints, what may be resumed), `ridge_probe` (the probe R²), `report` (results.md, results.png, a set's
card), `runner` (the Benchmark). It reads every stage; no stage imports it.
"""
