"""Training step (forward + backward + clip + Adam) throughput and peak memory: faithful vs efficient.

    python benchmarks/bench_train.py [--quick] [--text frozen|trained] [--batches 32 128] [--reps N]

Configurations (benchmarks/common.py CONFIGS), all with MOSI dimensions (text 50 tokens through a
BERT-base-sized encoder with random weights, audio 375 x 5, vision 500 x 20), identical text encoder:
  faithful (authors' runtime)  the authors' architecture as their code runs it: 512 x 512 TCF images,
                               flatten -> Linear(256036 -> 128) for each of the six level-3 inputs,
                               NCHW convs, torch.optim.Adam (foreach)
  faithful                     the same function with exact rewrites: channels_last TCF on CPU, fused Adam
  efficient                    the training default (mclmcf.training.cli --level3 efficient):
                               tcf_backbone="pooled_conv3" (4x average-pooled 128 x 128 images, built
                               from pooled vectors) + tcf_head="pool" (conv output pooled to 16 x 16
                               -> Linear(256 -> 128)), plus the rewrites
With the text encoder fine-tuned, the efficient recipe also runs with each training memory option
(MEMORY_OPTIONS: mclmcf.training.cli --precision bf16, --gradient-checkpointing, --optimizer-state bf16) and all three.
Each (configuration, batch) runs in a fresh subprocess; memory = peak growth (CPU: RSS, CUDA: allocator)
over the process after imports and inputs, so it counts weights, gradients, Adam state and activations.
On CPU the default is a frozen text encoder (BERT-base forward only) and batch 128 without the
authors'-runtime row: fine-tuning BERT-base on a CPU would not fit the 10-minute budget; `--text trained --batches 32` measures the fine-tuned rows on their own. --quick
fine-tunes its tiny text encoder, so the memory options run there too.
Writes benchmarks/results/train_step.json (train_step_trained.json / _frozen.json for the non-default).
"""

from __future__ import annotations

import argparse
import statistics

from common import (CONFIGS, MOSI_LENGTHS, PeakMemory, default_device, default_text, machine_line, make_inputs,
                    model_config, print_table, run_training_steps, timed, training_step_args, worker_machine_info,
                    worker_main, write_json)

QUICK = dict(text="tiny", tcf_dim=64, lengths=dict(text=16, audio=40, vision=50), batches=[4], warmup=1, reps=1)
GOAL_SPEEDUP, GOAL_MEMORY = 3.0, 0.25
# Training memory options (TrainConfig fields, mclmcf.training.cli flags) on top of the efficient recipe; only with
# the text encoder fine-tuned (checkpointing needs its backward, and its Adam state is what bf16 halves).
MEMORY_OPTIONS = {
    "bf16 autocast": dict(precision="bf16"),
    "grad checkpointing": dict(gradient_checkpointing=True),
    "bf16 Adam state": dict(optimizer_state="bf16"),
    "all three": dict(precision="bf16", gradient_checkpointing=True, optimizer_state="bf16"),
}


def use_authors_conv_layout(model) -> None:
    """Run the model's TCF convs in the authors' NCHW layout (the production TCFStack runs channels_last on CPU)."""
    import torch.nn.functional as F
    from mclmcf.model.network import TCFStack

    class NCHWStack(TCFStack):
        def convolve(self, x, keep_maps):
            maps = []
            for conv in self.convs:
                x = F.relu(conv(x))
                if keep_maps:
                    maps.append(x)
            return x, maps

    for module in model.modules():
        if type(module) is TCFStack:
            module.__class__ = NCHWStack


def measure(spec: dict) -> dict:
    """Worker: build one configuration, time training steps, report peak memory growth."""
    import torch
    from mclmcf.model.network import MCLMCF
    from mclmcf.training.config import TrainConfig
    from mclmcf.training.prepare import enable_gradient_checkpointing, make_optimizer
    from mclmcf.training.runtime import Env, autocast

    torch.manual_seed(0)
    if spec.get("threads"):
        torch.set_num_threads(spec["threads"])
    device = spec["device"]
    settings = CONFIGS[spec["config"]]
    extra = {"tcf_dim": spec["tcf_dim"]} if spec.get("tcf_dim") else {}
    config = model_config(spec["config"], spec["text"], spec["frozen"], **extra)
    batch = make_inputs(config, spec["batch"], spec["lengths"], device)
    memory = PeakMemory(device)
    model = MCLMCF(config).to(device).train()
    if not settings["channels_last"]:
        use_authors_conv_layout(model)
    train_cfg = TrainConfig(**spec.get("options", {}))          # the paper's lrs and decay; memory options
    if train_cfg.gradient_checkpointing:
        enable_gradient_checkpointing(model)
    optimizer = make_optimizer(model, train_cfg, fused=settings["fused"])
    params = [p for p in model.parameters() if p.requires_grad]
    env = Env(device=torch.device(device))

    def step():
        optimizer.zero_grad(set_to_none=True)
        with autocast(train_cfg, env):
            loss = model(**batch).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()

    times = timed(step, device, spec["warmup"], spec["reps"])
    return dict(spec, step_s=statistics.median(times), step_times_s=times,
                samples_per_s=spec["batch"] / statistics.median(times), peak_mib=memory.peak_mib(),
                params_m=sum(p.numel() for p in model.parameters()) / 1e6,
                trainable_m=sum(p.numel() for p in params) / 1e6)


def plan(args, device: str) -> list[dict]:
    """The (configuration, batch) runs: the authors'-runtime row only at the smallest batch on CPU; the memory
    options when the text encoder is fine-tuned."""
    cpu = device == "cpu"
    base = dict(device=device, text="bert-base", tcf_dim=None, lengths=MOSI_LENGTHS, warmup=1, threads=args.threads)
    if args.quick:
        base.update({k: v for k, v in QUICK.items() if k != "batches"})
    batches = QUICK["batches"] if args.quick else args.batches
    frozen = (args.text or ("trained" if args.quick else default_text(device))) == "frozen"
    options = {"": {}} | ({} if frozen else {f" + {k}": v for k, v in MEMORY_OPTIONS.items()})
    runs = []
    for batch in batches:
        for name in CONFIGS:
            if cpu and not args.quick and name == "faithful (authors' runtime)" and batch != min(batches):
                continue
            reps = args.reps or (1 if cpu or args.quick else 5)
            for suffix, train_options in (options.items() if name == "efficient" else [("", {})]):
                runs.append(dict(base, config=name, label=name + suffix, options=train_options, batch=batch,
                                 frozen=frozen, reps=reps, warmup=base["warmup"] if cpu else 2))
    return runs


def summarise(results: list[dict]) -> list[dict]:
    """Each efficient row (with or without memory options) vs each faithful row at the same batch: throughput
    and memory ratios, goal verdicts."""
    out = []
    for batch in sorted({r["batch"] for r in results}):
        rows = {r["label"]: r for r in results if r["batch"] == batch}
        for ref in ("faithful (authors' runtime)", "faithful"):
            if ref not in rows:
                continue
            for eff in (r for r in rows.values() if r["config"] == "efficient"):
                speed = eff["samples_per_s"] / rows[ref]["samples_per_s"]
                mem = eff["peak_mib"] / rows[ref]["peak_mib"]
                out.append(dict(batch=batch, configuration=eff["label"], reference=ref, speedup=speed,
                                memory_ratio=mem, meets_speed=speed >= GOAL_SPEEDUP, meets_memory=mem <= GOAL_MEMORY))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smoke test: tiny text encoder, small TCF, batch 4")
    ap.add_argument("--batches", type=int, nargs="+", default=[32, 128])
    ap.add_argument("--reps", type=int, help="measured steps per run (default 1 on CPU, 5 on CUDA)")
    training_step_args(ap)
    args = ap.parse_args()
    device = args.device or default_device()
    info = worker_machine_info(args)
    results = run_training_steps(plan(args, device), lambda r: f"{r['label']:<37} batch {r['batch']:>3}")

    ref = {r["batch"]: r for r in results if r["config"] == "faithful (authors' runtime)"}
    text = "quick smoke test, tiny text encoder" if args.quick else (
        f"BERT-base-sized text encoder, {'frozen' if results[0]['frozen'] else 'fine-tuned'}")
    print(f"\ntraining step on {device}, MOSI dims, {text}; {machine_line(info)}")
    rows = []
    for r in results:
        base = ref.get(r["batch"]) or next(x for x in results if x["batch"] == r["batch"] and x["config"] == "faithful")
        rows.append([r["label"], r["batch"], r["samples_per_s"], r["step_s"], r["peak_mib"] / 1024,
                     r["samples_per_s"] / base["samples_per_s"], r["peak_mib"] / base["peak_mib"],
                     r["params_m"], r["reps"]])
    table = print_table(["configuration", "batch", "samples/s", "s/step", "peak GiB", "x speed", "x memory",
                         "params M", "steps"], rows)
    summary = summarise(results)
    for s in summary:
        print(f"batch {s['batch']}: {s['configuration']} vs {s['reference']}: {s['speedup']:.2f}x throughput "
              f"({'meets' if s['meets_speed'] else 'MISSES'} >= {GOAL_SPEEDUP:g}x), {s['memory_ratio']:.2f}x peak memory "
              f"({'meets' if s['meets_memory'] else 'MISSES'} <= {GOAL_MEMORY:g})")
    print("x speed / x memory: relative to the faithful (authors' runtime) row at the same batch, "
          "or to the faithful row where that was not run")
    name = ("train_step" + ("_quick" if args.quick else "")
            + (f"_{args.text}" if args.text not in (None, default_text(device)) else ""))
    write_json(name,
               dict(machine=info, device=device, quick=args.quick, results=results, summary=summary,
                    goal=dict(speedup=GOAL_SPEEDUP, memory_ratio=GOAL_MEMORY), table=table))


if __name__ == "__main__":
    if not worker_main(measure):
        main()
