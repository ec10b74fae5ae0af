"""Shared pieces of the benchmark scripts: configurations, inputs, subprocess workers, tables, JSON.

Every measurement that reports memory runs in a fresh subprocess (``run_worker``) so that one
configuration's allocations cannot hide in another's peak. On CPU the peak is the growth of the
process's peak RSS (ru_maxrss) over its RSS after imports and inputs; on CUDA it is
torch.cuda.max_memory_allocated.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "benchmarks" / "results"

from mclmcf.training.config import LEVEL3_RECIPES  # noqa: E402  (after the sys.path insert)
from mclmcf.training.synthetic import TINY_BERT  # noqa: E402

# BERT-base architecture (random weights: throughput does not depend on them); --quick runs use TINY_BERT.
BERT_BASE = dict(model_type="bert", vocab_size=30522, hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                 intermediate_size=3072, max_position_embeddings=512)
# MMSA unaligned_50 MOSI: text 50 tokens, COVAREP 5-d at ~375 steps, Facet 20-d at ~500 steps.
MOSI_LENGTHS = dict(text=50, audio=375, vision=500)

# name -> model overrides, optimizer, whether the TCF convs may run channels_last on CPU.
# "faithful (authors' runtime)": the authors' architecture run as their code runs it (NCHW, torch.optim.Adam).
# "faithful": the same function with this project's exact rewrites (channels_last TCF, fused Adam).
# "efficient": the training default (mclmcf.training.cli --level3 efficient): named options that change the
#   level-3 loss (mclmcf.training.config.LEVEL3_RECIPES), plus the rewrites.
CONFIGS = {
    "faithful (authors' runtime)": dict(model=LEVEL3_RECIPES["faithful"], fused=False, channels_last=False),
    "faithful": dict(model=LEVEL3_RECIPES["faithful"], fused=True, channels_last=True),
    "efficient": dict(model=LEVEL3_RECIPES["efficient"], fused=True, channels_last=True),
}


def model_config(name: str, text: str = "bert-base", frozen: bool = False, **extra):
    """MOSI-preset MCLMCFConfig for a named benchmark configuration."""
    from mclmcf.model.config import MCLMCFConfig
    encoder = dict(BERT_BASE if text == "bert-base" else TINY_BERT)
    return MCLMCFConfig.from_preset("mosi", text_encoder_config=encoder, freeze_text_encoder=frozen,
                                    **{**CONFIGS[name]["model"], **extra})


def make_inputs(config, batch: int, lengths: dict, device: str = "cpu", seed: int = 0) -> dict:
    """Random model inputs at the given lengths (audio/vision lengths vary between half and full)."""
    import torch
    g = torch.Generator().manual_seed(seed)
    lt, la, lv = lengths["text"], lengths["audio"], lengths["vision"]
    vocab = config.text_encoder_config["vocab_size"]
    batch_dict = dict(input_ids=torch.randint(1000, vocab, (batch, lt), generator=g),
                      attention_mask=torch.ones(batch, lt, dtype=torch.long),
                      token_type_ids=torch.zeros(batch, lt, dtype=torch.long),
                      audio=torch.randn(batch, la, config.audio_dim, generator=g),
                      audio_lengths=torch.randint(la // 2, la + 1, (batch,), generator=g),
                      vision=torch.randn(batch, lv, config.visual_dim, generator=g),
                      vision_lengths=torch.randint(lv // 2, lv + 1, (batch,), generator=g),
                      labels=torch.rand(batch, generator=g) * 6 - 3)
    return {k: v if k.endswith("lengths") else v.to(device) for k, v in batch_dict.items()}


# ---- memory and timing ---------------------------------------------------------------------

def rss_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


class PeakMemory:
    """Peak memory growth over the moment of construction: CUDA allocator peak, or CPU peak RSS."""

    def __init__(self, device: str):
        import torch
        self.cuda = device.startswith("cuda")
        if self.cuda:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            self.base = torch.cuda.memory_allocated() / 2**20
        else:
            self.base = rss_mib()

    def peak_mib(self) -> float:
        import torch
        if self.cuda:
            torch.cuda.synchronize()
            return torch.cuda.max_memory_allocated() / 2**20 - self.base
        return peak_rss_mib() - self.base


def timed(fn, device: str, warmup: int, reps: int) -> list[float]:
    """Seconds per call of fn() for reps calls after warmup calls (CUDA synchronised)."""
    import torch
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    for _ in range(warmup):
        fn()
    sync()
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - start)
    return times


def default_device() -> str:
    import torch
    return "cuda" if torch.cuda.is_available() else "cpu"


# ---- subprocess workers -------------------------------------------------------------------

def run_worker(script: Path, spec: dict, timeout: float = 900) -> dict:
    """Run ``script --worker SPEC_JSON`` in a fresh interpreter; its last stdout line is the JSON result."""
    proc = subprocess.run([sys.executable, str(script), "--worker", json.dumps(spec)], capture_output=True,
                          text=True, timeout=timeout, cwd=ROOT)
    if proc.returncode != 0:
        raise RuntimeError(f"worker {spec} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def training_step_args(ap) -> None:
    """The options bench_train.py and bench_scaling.py share."""
    ap.add_argument("--text", choices=("frozen", "trained"), help="text encoder (default: frozen on CPU)")
    ap.add_argument("--device", default=None)
    ap.add_argument("--threads", type=int, help="torch threads per worker (1 is steadier on a shared machine)")


def default_text(device: str) -> str:
    """Text-encoder mode when --text is not given: frozen on CPU (fine-tuning BERT-base there would not
    fit the suite's 10 minutes), trained (as training runs) on a GPU."""
    return "frozen" if device == "cpu" else "trained"


def worker_machine_info(args) -> dict:
    """machine_info() with the torch threads each worker runs with."""
    info = machine_info()
    info["torch_threads"] = args.threads or info["torch_threads"]
    return info


def run_training_steps(specs: list[dict], label) -> list[dict]:
    """Each spec in a fresh bench_train.py worker; prints ``label(result)`` with its step time and peak."""
    results = []
    for spec in specs:
        r = run_worker(ROOT / "benchmarks" / "bench_train.py", spec)
        print(f"  {label(r)}: {r['step_s']:.2f} s/step, {r['peak_mib']:.0f} MiB", flush=True)
        results.append(r)
    return results


def worker_main(measure) -> bool:
    """If called as a worker, run ``measure(spec)`` and print its JSON; returns whether it was one."""
    if len(sys.argv) == 3 and sys.argv[1] == "--worker":
        print(json.dumps(measure(json.loads(sys.argv[2]))))
        return True
    return False


# ---- reporting ----------------------------------------------------------------------------

def machine_info() -> dict:
    import torch
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    # the vector instructions torch uses (AVX2, AVX512, ...): CPUs of one model name differ by it, and so do timings
    info = dict(cpu=cpu, cpu_capability=torch.backends.cpu.get_cpu_capability(), cores=os.cpu_count(),
                torch=torch.__version__, torch_threads=torch.get_num_threads(),
                python=platform.python_version(), platform=platform.platform(),
                ram_gib=round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
                load_average_1min=os.getloadavg()[0], cuda=None)
    if torch.cuda.is_available():
        info["cuda"] = dict(device=torch.cuda.get_device_name(), version=torch.version.cuda)
    return info


def machine_line(info: dict) -> str:
    gpu = f", GPU {info['cuda']['device']}" if info["cuda"] else ", no GPU"
    return (f"{info['cpu']} ({info['cpu_capability']}), {info['cores']} cores, torch {info['torch']} "
            f"({info['torch_threads']} threads){gpu}; load average {info['load_average_1min']:.1f} at start")


def print_table(headers: list[str], rows: list[list]) -> str:
    """Print (and return) a markdown table; floats to 3 significant digits."""
    def cell(v):
        return f"{v:.3g}" if isinstance(v, float) else ("" if v is None else str(v))
    cells = [[cell(v) for v in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]
    lines = ["| " + " | ".join(h.ljust(w) for h, w in zip(headers, widths)) + " |",
             "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    lines += ["| " + " | ".join(c.ljust(w) for c, w in zip(r, widths)) + " |" for r in cells]
    text = "\n".join(lines)
    print(text)
    return text


def write_json(name: str, payload: dict) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(payload, indent=1))
    print(f"wrote {path.relative_to(ROOT)}")
    return path
