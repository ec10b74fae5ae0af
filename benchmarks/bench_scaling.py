"""How a training step's time and peak memory grow with batch size and with sequence length.

    python benchmarks/bench_scaling.py [--quick] [--configs efficient faithful] [--text frozen|trained]

Batch sweep at MOSI lengths; length sweep at a fixed batch, scaling the text, audio and vision
lengths together (x1 = 50 / 375 / 500). One fresh subprocess per point (the bench_train worker), so
the memory column is that point's own peak; one warm-up step, then the median of 2 measured steps on
CPU (3 on CUDA). On CPU the default is the efficient configuration with a frozen BERT-base-sized text
encoder (the faithful one costs minutes per point there).
Writes benchmarks/results/scaling.json and scaling.png.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from common import (MOSI_LENGTHS, RESULTS, default_device, default_text, machine_line, print_table,
                    run_training_steps, training_step_args, worker_machine_info, write_json)

FULL = dict(batches=[8, 16, 32, 64], factors=[0.5, 1.0, 2.0], length_batch=16)
QUICK = dict(batches=[2, 4], factors=[0.5, 1.0], length_batch=4)


def points(args, device: str) -> list[dict]:
    grid = QUICK if args.quick else FULL
    base = dict(device=device, text="tiny" if args.quick else "bert-base", tcf_dim=64 if args.quick else None,
                frozen=(args.text or default_text(device)) == "frozen",
                warmup=1, reps=1 if args.quick else 2 if device == "cpu" else 3, threads=args.threads)
    lengths = dict(text=16, audio=40, vision=50) if args.quick else MOSI_LENGTHS
    runs = {}  # (config, batch, factor) -> spec; a point both sweeps share is measured once
    for config in args.configs:
        for batch, factor, name in ([(b, 1.0, "batch") for b in grid["batches"]]
                                    + [(grid["length_batch"], f, "length") for f in grid["factors"]]):
            scaled = {k: max(2, int(v * factor)) for k, v in lengths.items()}
            spec = runs.setdefault((config, batch, factor), dict(base, config=config, batch=batch, lengths=scaled,
                                                                 factor=factor, sweeps=[]))
            spec["sweeps"].append(name)
    return list(runs.values())


def plot(results: list[dict], path: Path, title: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 2, figsize=(10, 7))
    for config in dict.fromkeys(r["config"] for r in results):
        for col, (sweep, key, label) in enumerate((("batch", "batch", "batch size"),
                                                   ("length", "factor", "sequence length (x MOSI)"))):
            rs = sorted((r for r in results if r["config"] == config and sweep in r["sweeps"]), key=lambda r: r[key])
            xs = [r[key] for r in rs]
            axes[0, col].plot(xs, [r["step_s"] for r in rs], "o-", label=config)
            axes[1, col].plot(xs, [r["peak_mib"] / 1024 for r in rs], "o-", label=config)
            axes[1, col].set_xlabel(label)
    for ax in axes.flat:
        ax.set_xscale("log", base=2)
        ax.grid(alpha=0.3)
        ax.legend()
    axes[0, 0].set_ylabel("seconds per training step")
    axes[1, 0].set_ylabel("peak memory growth (GiB)")
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    print(f"wrote {path.relative_to(RESULTS.parents[1])}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smoke test: tiny model, two points per sweep")
    ap.add_argument("--configs", nargs="+", default=["efficient"])
    training_step_args(ap)
    args = ap.parse_args()
    device = args.device or default_device()
    info = worker_machine_info(args)
    results = run_training_steps(points(args, device), lambda r: f"{r['config']} {'+'.join(r['sweeps']):<12} "
                                 f"batch {r['batch']:>3} lengths {r['lengths']}")

    text = "frozen" if results[0]["frozen"] else "fine-tuned"
    title = f"training step on {device}, {'tiny model (quick)' if args.quick else 'MOSI dims'}, text encoder {text}"
    print(f"\n{title}; {machine_line(info)}")
    rows = [[r["config"], " + ".join(r["sweeps"]), r["batch"], f"{r['lengths']['text']}/{r['lengths']['audio']}/{r['lengths']['vision']}",
             r["step_s"], r["samples_per_s"], r["peak_mib"] / 1024] for r in results]
    table = print_table(["configuration", "sweep", "batch", "lengths t/a/v", "s/step", "samples/s", "peak GiB"], rows)
    name = "scaling_quick" if args.quick else "scaling"
    plot(results, RESULTS / f"{name}.png", title)
    write_json(name, dict(machine=info, device=device, quick=args.quick, results=results, table=table))


if __name__ == "__main__":
    main()
