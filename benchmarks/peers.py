"""``vae_core.fit`` against its peers: the same VAE, the same data, five trainers, one run.

Every trainer trains the same model, the 784-400-20 Bernoulli VAE of ``vae_core.VAE(784, 20, (400,))``
(tanh hidden layers; a diagonal-Gaussian encoder whose log-variance is soft-clamped to (-10, 10) as
``vae_core`` does; Bernoulli logits out), from the same initial weights, on the same statically
binarised Fashion-MNIST (60,000 train / 10,000 test, read from Debian's IDX files in
/usr/share/datasets/fashion-mnist, binarised once per run with a fixed numpy seed and handed to
every trainer as a ``.npy``), batch 128, Adam with lr 1e-3, one reparameterised sample per
example, on 2 threads:

=========  ====================================================================================
fit        ``vae_core.fit(VAE(784, 20, (400,)), x)`` in the project's own ``.venv``
examples   a pytorch/examples-style loop: an ``nn.Module`` with fc1/fc21/fc22/fc3/fc4, sigmoid and
           summed BCE plus the analytic KL, ``torch.optim.Adam``, a ``DataLoader`` over a
           ``TensorDataset`` with ``shuffle=True``
pythae     ``pythae.models.VAE`` with a 784-400-20 tanh encoder/decoder (``BaseEncoder`` /
           ``BaseDecoder``), trained by its ``BaseTrainer`` (output_dir in a temporary folder)
pyro       ``SVI`` with ``Trace_ELBO`` (a Monte Carlo KL, Pyro's default) and ``pyro.optim.Adam``,
           a ``pyro.plate`` over the batch, the same networks, the same ``DataLoader``
jax        Flax (linen) + optax, one ``jax.jit``-compiled train step, numpy minibatches
=========  ====================================================================================

Each (trainer, repeat) runs in a fresh subprocess; the repeats are interleaved (round robin, the
order rotated every repeat) so that every trainer sees the same machine. A run trains one warm-up
epoch (excluded from the timings: it holds the jit compilation, the first allocations and caches)
and then ``--epochs`` timed epochs; s/epoch is the mean of the timed epochs of one repeat, and the
table gives its median and range over the repeats. Only the training loop is timed: no evaluation,
no start-up, no data loading.

The test ELBO is one definition computed by one function for every trainer: each subprocess hands
back its trained weights and this script evaluates, in float64 numpy, the mean over the 10,000
binarised test images of ``log p(x|z) - KL(q(z|x) || N(0, I))`` with the KL in closed form and one
reparameterised ``z`` per image from a fixed noise array (seed 20240616), the same for all.

Threads: ``torch.set_num_threads(2)`` for the torch trainers; for JAX, ``XLA_FLAGS=
--xla_cpu_multi_thread_eigen=true`` and the process pinned to 2 cores with ``os.sched_setaffinity``
(XLA's CPU thread pool is sized from the schedulable cores), and ``OMP_NUM_THREADS``,
``MKL_NUM_THREADS`` and ``OPENBLAS_NUM_THREADS`` set to 2 for every subprocess.

The peers live in their own virtual environment, ``benchmarks/.peers-venv``, made by ``--setup``
(``torch==2.13.0``, the CPU build, plus pyro-ppl, pythae, jax, jaxlib, flax, optax, numpy); they are
not in ``requirements.txt``. A peer that is missing or fails is reported as unavailable, with the
reason, and the run goes on.

    python benchmarks/peers.py --setup              # once: make benchmarks/.peers-venv
    python benchmarks/peers.py                      # 5 repeats, 1 timed epoch after the warm-up
    python benchmarks/peers.py --repeats 3 --epochs 2 --peers fit,examples,jax
    python benchmarks/peers.py --quick              # smoke test: small data, 1 repeat
    python benchmarks/peers.py --fit-src /tmp/vae-before   # fit from another checkout (before/after)

It prints a table and writes ``benchmarks/results/peers.json`` (settings, versions, machine,
threads, repeats, every measurement).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PEERS_VENV = HERE / ".peers-venv"
RESULTS = HERE / "results" / "peers.json"

TRAINERS = ("fit", "examples", "pythae", "pyro", "jax")
#: what --setup installs into the peers' environment, one pip call per group (a failure stays in its group)
PEER_PACKAGES = {
    "base": ["torch==2.13.0", "numpy"],       # pinned: the CPU wheel; an unpinned torch pulls CUDA
    "pyro": ["pyro-ppl"],
    "pythae": ["pythae"],
    "jax": ["jax", "jaxlib", "flax", "optax"],
}
NEEDS = {"examples": ["torch", "numpy"], "pythae": ["pythae", "torch", "numpy"],
         "pyro": ["pyro-ppl", "torch", "numpy"], "jax": ["jax", "jaxlib", "flax", "optax", "numpy"],
         "fit": ["vae_core", "torch", "numpy"]}

D, H, Z = 784, 400, 20
BATCH, LR, THREADS = 128, 1e-3, 2
EVAL_SEED = 20240616
BINARISE_SEED = 0
DATA_DIR = Path("/usr/share/datasets/fashion-mnist")
LOGVAR_BOUND = 10.0     # vae_core's soft clamp of the encoder's log-variance: 10 tanh(logvar / 10)
QUICK_N, QUICK_TEST = 2048, 1000


# ---------------------------------------------------------------------------------------------
# the children: one trainer, one repeat, in a fresh process
# ---------------------------------------------------------------------------------------------

def _pin_threads(threads: int) -> None:
    """Confine this process to ``threads`` cores (XLA sizes its pool from the schedulable cores)."""
    try:
        cores = sorted(os.sched_getaffinity(0))
        os.sched_setaffinity(0, cores[:threads])
    except (AttributeError, OSError):
        pass


def _versions(names) -> dict:
    from importlib import metadata
    out = {"python": platform.python_version()}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def _torch_nets():
    """The pytorch/examples-style model: fc1 -> (fc21, fc22), fc3 -> fc4 (used by examples and pyro)."""
    import torch
    from torch import nn

    class ExamplesVAE(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1 = nn.Linear(D, H)
            self.fc21 = nn.Linear(H, Z)
            self.fc22 = nn.Linear(H, Z)
            self.fc3 = nn.Linear(Z, H)
            self.fc4 = nn.Linear(H, D)

        def encode(self, x):
            h1 = torch.tanh(self.fc1(x))
            return self.fc21(h1), LOGVAR_BOUND * torch.tanh(self.fc22(h1) / LOGVAR_BOUND)

        def reparameterize(self, mu, logvar):
            std = torch.exp(0.5 * logvar)
            return mu + torch.randn_like(std) * std

        def decode(self, z):          # logits of the Bernoulli pixels
            return self.fc4(torch.tanh(self.fc3(z)))

        def forward(self, x):
            mu, logvar = self.encode(x.view(-1, D))
            return self.decode(self.reparameterize(mu, logvar)), mu, logvar

    return ExamplesVAE


def _load_torch_linear(linear, w, b) -> None:
    """Copy a common-layout weight ``w (in, out)`` and bias into an ``nn.Linear``."""
    import torch
    with torch.no_grad():
        linear.weight.copy_(torch.from_numpy(w.T.copy()))
        linear.bias.copy_(torch.from_numpy(b))


def _examples_weights_in(net, init) -> None:
    for name in ("fc1", "fc21", "fc22", "fc3", "fc4"):
        _load_torch_linear(getattr(net, name), init[name + "_w"], init[name + "_b"])


def _examples_weights_out(net) -> dict:
    return {f"{name}_{k}": (getattr(net, name).weight.detach().numpy().T if k == "w"
                            else getattr(net, name).bias.detach().numpy()).astype("float64")
            for name in ("fc1", "fc21", "fc22", "fc3", "fc4") for k in ("w", "b")}


def child_fit(x, init, epochs, seed):
    import torch
    import vae_core
    from torch import nn
    from vae_core import VAE, fit

    model = VAE(D, Z, (H,))
    enc = [m for m in model.encoder.modules() if isinstance(m, nn.Linear)]
    dec = [m for m in model.decoder.modules() if isinstance(m, nn.Linear)]
    shapes = [tuple(m.weight.shape) for m in enc + dec]
    if shapes != [(H, D), (2 * Z, H), (H, Z), (D, H)]:
        raise RuntimeError(f"vae_core.VAE's layers are not the expected 784-400-(20+20) / 20-400-784: {shapes}")
    import numpy as np
    _load_torch_linear(enc[0], init["fc1_w"], init["fc1_b"])
    _load_torch_linear(enc[1], np.concatenate([init["fc21_w"], init["fc22_w"]], 1),
                       np.concatenate([init["fc21_b"], init["fc22_b"]]))
    _load_torch_linear(dec[0], init["fc3_w"], init["fc3_b"])
    _load_torch_linear(dec[1], init["fc4_w"], init["fc4_b"])
    xt = torch.from_numpy(x).float()
    history = fit(model, xt, epochs=epochs, batch_size=BATCH, lr=LR, seed=seed, progress=False, device="cpu")
    head_w = enc[1].weight.detach().numpy().T.astype("float64")
    head_b = enc[1].bias.detach().numpy().astype("float64")
    weights = {"fc1_w": enc[0].weight.detach().numpy().T, "fc1_b": enc[0].bias.detach().numpy(),
               "fc21_w": head_w[:, :Z], "fc21_b": head_b[:Z], "fc22_w": head_w[:, Z:], "fc22_b": head_b[Z:],
               "fc3_w": dec[0].weight.detach().numpy().T, "fc3_b": dec[0].bias.detach().numpy(),
               "fc4_w": dec[1].weight.detach().numpy().T, "fc4_b": dec[1].bias.detach().numpy()}
    notes = "history.seconds (no test set given, so no evaluation inside the epoch)"
    return list(history.seconds), weights, {"vae_core": vae_core.__version__}, notes


def child_examples(x, init, epochs, seed):
    import torch
    import torch.nn.functional as F
    from torch import optim
    from torch.utils.data import DataLoader, TensorDataset

    torch.manual_seed(seed)
    model = _torch_nets()()
    _examples_weights_in(model, init)
    optimizer = optim.Adam(model.parameters(), lr=LR)
    train_loader = DataLoader(TensorDataset(torch.from_numpy(x).float()), batch_size=BATCH, shuffle=True)

    def loss_function(recon_logits, x, mu, logvar):   # the examples' sigmoid + BCE (its log is clamped at -100)
        bce = F.binary_cross_entropy(torch.sigmoid(recon_logits), x.view(-1, D), reduction="sum")
        kld = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
        return bce + kld

    seconds = []
    for _ in range(epochs):
        start = time.perf_counter()
        model.train()
        train_loss = 0.0
        for (data,) in train_loader:
            optimizer.zero_grad()
            recon_batch, mu, logvar = model(data)
            loss = loss_function(recon_batch, data, mu, logvar)
            loss.backward()
            train_loss += loss.item()
            optimizer.step()
        seconds.append(time.perf_counter() - start)
    return seconds, _examples_weights_out(model), {}, "per-epoch perf_counter around the loader loop"


def child_pyro(x, init, epochs, seed):
    import pyro
    import pyro.distributions as dist
    import torch
    from pyro.infer import SVI, Trace_ELBO
    from pyro.optim import Adam
    from torch.utils.data import DataLoader, TensorDataset

    pyro.set_rng_seed(seed)
    pyro.clear_param_store()
    net = _torch_nets()()
    _examples_weights_in(net, init)

    class Encoder(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1, self.fc21, self.fc22 = net.fc1, net.fc21, net.fc22

        def forward(self, x):
            return net.encode(x)

    class Decoder(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.fc3, self.fc4 = net.fc3, net.fc4

        def forward(self, z):
            return net.decode(z)

    encoder, decoder = Encoder(), Decoder()

    def model(x):
        pyro.module("decoder", decoder)
        with pyro.plate("data", x.shape[0]):
            loc = x.new_zeros((x.shape[0], Z))
            z = pyro.sample("latent", dist.Normal(loc, torch.ones_like(loc)).to_event(1))
            pyro.sample("obs", dist.Bernoulli(logits=decoder(z)).to_event(1), obs=x)

    def guide(x):
        pyro.module("encoder", encoder)
        with pyro.plate("data", x.shape[0]):
            mu, logvar = encoder(x)
            pyro.sample("latent", dist.Normal(mu, torch.exp(0.5 * logvar)).to_event(1))

    svi = SVI(model, guide, Adam({"lr": LR}), loss=Trace_ELBO())
    train_loader = DataLoader(TensorDataset(torch.from_numpy(x).float()), batch_size=BATCH, shuffle=True)
    seconds = []
    for _ in range(epochs):
        start = time.perf_counter()
        epoch_loss = 0.0
        for (data,) in train_loader:
            epoch_loss += svi.step(data)
        seconds.append(time.perf_counter() - start)
    notes = (f"pyro validation {'on' if pyro.poutine.util.is_validation_enabled() else 'off'} (Pyro's default); "
             "Trace_ELBO: one-sample Monte Carlo KL; pyro.optim.Adam wraps torch.optim.Adam")
    return seconds, _examples_weights_out(net), {}, notes


def child_pythae(x, init, epochs, seed):
    import torch
    from pythae.data.datasets import BaseDataset
    from pythae.models import VAE, VAEConfig
    from pythae.models.base.base_utils import ModelOutput
    from pythae.models.nn import BaseDecoder, BaseEncoder
    from pythae.trainers import BaseTrainer, BaseTrainerConfig
    from pythae.trainers.training_callbacks import TrainingCallback

    net = _torch_nets()()
    _examples_weights_in(net, init)

    class Encoder(BaseEncoder):
        def __init__(self):
            BaseEncoder.__init__(self)
            self.fc1, self.fc21, self.fc22 = net.fc1, net.fc21, net.fc22

        def forward(self, x):
            mu, logvar = net.encode(x.reshape(-1, D))
            return ModelOutput(embedding=mu, log_covariance=logvar)

    class Decoder(BaseDecoder):
        def __init__(self):
            BaseDecoder.__init__(self)
            self.fc3, self.fc4 = net.fc3, net.fc4

        def forward(self, z):
            return ModelOutput(reconstruction=torch.sigmoid(net.decode(z)))

    class EpochTimer(TrainingCallback):
        def __init__(self):
            self.starts, self.seconds = [], []

        def on_epoch_begin(self, training_config, **kwargs):
            self.starts.append(time.perf_counter())

        def on_epoch_end(self, training_config, **kwargs):
            self.seconds.append(time.perf_counter() - self.starts[-1])

    config = VAEConfig(input_dim=(D,), latent_dim=Z, reconstruction_loss="bce")
    model = VAE(model_config=config, encoder=Encoder(), decoder=Decoder())
    timer = EpochTimer()
    xt = torch.from_numpy(x).float()
    train = BaseDataset(xt, torch.zeros(len(xt)))     # what pythae's pipelines build from an array
    with tempfile.TemporaryDirectory(prefix="pythae-") as out:
        trainer_config = BaseTrainerConfig(output_dir=out, num_epochs=epochs, learning_rate=LR,
                                           per_device_train_batch_size=BATCH, optimizer_cls="Adam",
                                           steps_saving=None, seed=seed, no_cuda=True)
        trainer = BaseTrainer(model=model, train_dataset=train, eval_dataset=None,
                              training_config=trainer_config, callbacks=[timer])
        trainer.train()
        trained = trainer._best_model if getattr(trainer, "_best_model", None) is not None else model
    weights = _examples_weights_out(net) if trained is model else None
    if weights is None:    # the trainer hands back its best model (a deep copy): read its layers
        weights = {f"{n}_{k}": (getattr(layer, n).weight.detach().numpy().T if k == "w"
                                else getattr(layer, n).bias.detach().numpy()).astype("float64")
                   for layer, names in ((trained.encoder, ("fc1", "fc21", "fc22")),
                                        (trained.decoder, ("fc3", "fc4")))
                   for n in names for k in ("w", "b")}
    notes = ("TrainingCallback on_epoch_begin/on_epoch_end around BaseTrainer's epoch: its train_step (a "
             "DataLoader over pythae's BaseDataset, one DatasetOutput dict per image, then collate), the "
             "scheduler step and the deepcopy of the best-on-train model; the console log comes after "
             "on_epoch_end and the final save after training, both untimed; the model evaluated is the "
             "trainer's best-on-train copy")
    return timer.seconds, weights, {}, notes


def child_jax(x, init, epochs, seed):
    import jax
    import jax.numpy as jnp
    import numpy as np
    import optax
    from flax import linen as nn

    class Encoder(nn.Module):
        @nn.compact
        def __call__(self, x):
            h = jnp.tanh(nn.Dense(H, name="fc1")(x))
            logvar = nn.Dense(Z, name="fc22")(h)
            return nn.Dense(Z, name="fc21")(h), LOGVAR_BOUND * jnp.tanh(logvar / LOGVAR_BOUND)

    class Decoder(nn.Module):
        @nn.compact
        def __call__(self, z):
            return nn.Dense(D, name="fc4")(jnp.tanh(nn.Dense(H, name="fc3")(z)))

    class FlaxVAE(nn.Module):
        def setup(self):
            self.encoder, self.decoder = Encoder(), Decoder()

        def __call__(self, x, key):
            mu, logvar = self.encoder(x)
            z = mu + jnp.exp(0.5 * logvar) * jax.random.normal(key, mu.shape)
            return self.decoder(z), mu, logvar

    model = FlaxVAE()
    dense = lambda n: {"kernel": jnp.asarray(init[n + "_w"]), "bias": jnp.asarray(init[n + "_b"])}
    params = {"params": {"encoder": {n: dense(n) for n in ("fc1", "fc21", "fc22")},
                         "decoder": {n: dense(n) for n in ("fc3", "fc4")}}}
    check = jax.tree_util.tree_map(jnp.shape, model.init(jax.random.PRNGKey(0), jnp.zeros((1, D)),
                                                         jax.random.PRNGKey(1)))
    if check != jax.tree_util.tree_map(jnp.shape, params):
        raise RuntimeError(f"flax parameter tree differs from the common layout: {check}")
    tx = optax.adam(LR)
    opt_state = tx.init(params)

    @jax.jit
    def train_step(params, opt_state, batch, key):
        def loss_fn(params):
            logits, mu, logvar = model.apply(params, batch, key)
            bce = optax.sigmoid_binary_cross_entropy(logits, batch).sum(-1)
            kld = -0.5 * jnp.sum(1 + logvar - mu ** 2 - jnp.exp(logvar), -1)
            return jnp.mean(bce + kld)
        loss, grads = jax.value_and_grad(loss_fn)(params)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    x = np.asarray(x, dtype=np.float32)
    rng = np.random.default_rng(seed)
    key = jax.random.PRNGKey(seed)
    seconds = []
    for _ in range(epochs):
        start = time.perf_counter()
        perm = rng.permutation(len(x))
        for i in range(0, len(x), BATCH):
            key, sub = jax.random.split(key)
            params, opt_state, loss = train_step(params, opt_state, x[perm[i:i + BATCH]], sub)
        jax.block_until_ready(params)
        seconds.append(time.perf_counter() - start)
    p = jax.device_get(params)["params"]
    weights = {f"{n}_{k}": np.asarray(p[part][n]["kernel" if k == "w" else "bias"], dtype=np.float64)
               for part, names in (("encoder", ("fc1", "fc21", "fc22")), ("decoder", ("fc3", "fc4")))
               for n in names for k in ("w", "b")}
    notes = (f"devices {[str(d) for d in jax.devices()]}, XLA_FLAGS={os.environ.get('XLA_FLAGS', '')!r}, "
             f"affinity {sorted(os.sched_getaffinity(0))}; the last partial batch (another shape) is "
             f"compiled in the warm-up epoch")
    return seconds, weights, {"jax_backend": jax.default_backend()}, notes


CHILDREN = {"fit": child_fit, "examples": child_examples, "pythae": child_pythae, "pyro": child_pyro,
            "jax": child_jax}


def run_child(args) -> None:
    """``--child NAME``: train one trainer once and write seconds, weights and versions to ``--out``."""
    _pin_threads(args.threads)
    import numpy as np
    if args.child != "jax":
        import torch
        torch.set_num_threads(args.threads)
    work = Path(args.work)
    x = np.load(work / "train.npy")
    init = dict(np.load(work / f"init-{args.repeat}.npz"))
    t0 = time.perf_counter()
    seconds, weights, extra, notes = CHILDREN[args.child](x, init, 1 + args.epochs, args.seed)
    wall = time.perf_counter() - t0
    np.savez(Path(args.out).with_suffix(".npz"), **{k: np.asarray(v, dtype=np.float64) for k, v in weights.items()})
    info = {"seconds": seconds, "train_wall_s": wall, "versions": {**_versions(NEEDS[args.child]), **extra},
            "notes": notes}
    if args.child != "jax":
        import torch
        info["torch_threads"] = torch.get_num_threads()
    Path(args.out).write_text(json.dumps(info))


# ---------------------------------------------------------------------------------------------
# the driver
# ---------------------------------------------------------------------------------------------

def setup() -> int:
    """Make ``benchmarks/.peers-venv`` and install the peers in it, one group at a time."""
    base = getattr(sys, "_base_executable", None) or sys.executable
    if not (PEERS_VENV / "bin" / "python").exists():
        print(f"creating {PEERS_VENV} with {base}")
        subprocess.run([base, "-m", "venv", str(PEERS_VENV)], check=True)
    py = str(PEERS_VENV / "bin" / "python")
    failed = []
    for group, packages in PEER_PACKAGES.items():
        print(f"installing {group}: {' '.join(packages)}", flush=True)
        r = subprocess.run([py, "-m", "pip", "install", "--quiet", *packages])
        if r.returncode:
            failed.append(group)
            print(f"  {group} failed to install (pip exit {r.returncode}); its rows will be reported unavailable")
    cuda = subprocess.run([py, "-c", "import torch; print(torch.__version__, torch.version.cuda)"],
                          capture_output=True, text=True)
    print("peers' torch:", cuda.stdout.strip() or cuda.stderr.strip()[-300:])
    return 1 if failed else 0


def _machine() -> dict:
    cpu = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "platform": platform.platform(),
            "load_average_at_start": list(os.getloadavg())}


def read_idx_images(path: Path):
    """A gzipped IDX image file as a uint8 array (N, rows * cols)."""
    import gzip

    import numpy as np
    with gzip.open(path, "rb") as f:
        raw = f.read()
    magic, n, rows, cols = (int.from_bytes(raw[i:i + 4], "big") for i in range(0, 16, 4))
    if magic != 2051 or len(raw) != 16 + n * rows * cols:
        raise ValueError(f"{path} is not an IDX image file (magic {magic}, {len(raw)} bytes)")
    return np.frombuffer(raw, dtype=np.uint8, offset=16).reshape(n, rows * cols)


def _checkout(src: Path) -> dict:
    """The commit of a checkout and whether its vae_core/ differs from it (read-only git)."""
    def git(*a):
        r = subprocess.run(["git", "-C", str(src), *a], capture_output=True, text=True)
        return r.stdout.strip() if r.returncode == 0 else None
    commit = git("rev-parse", "HEAD")
    changed = git("status", "--porcelain", "--", "vae_core")
    return {"commit": commit, "vae_core_modified": bool(changed) if changed is not None else None}


def make_data(work: Path, data_dir: Path, quick: bool) -> dict:
    """One static binarisation, made once and saved as uint8 .npy files that every trainer reads:
    pixel = 1 with probability grey / 255, from numpy seed BINARISE_SEED (train) and
    BINARISE_SEED + 1 (test). Read here from the IDX files, not through vae_core, so that the
    data does not depend on the library under test."""
    import numpy as np
    out = {}
    for split, prefix, seed in (("train", "train", BINARISE_SEED), ("test", "t10k", BINARISE_SEED + 1)):
        path = data_dir / f"{prefix}-images-idx3-ubyte.gz"
        if not path.exists():
            raise SystemExit(f"no {path}: install Debian's dataset-fashion-mnist or pass --data-dir")
        grey = read_idx_images(path)
        rng = np.random.default_rng(seed)
        x = (rng.random(grey.shape, dtype=np.float32) * 255 < grey).astype(np.uint8)
        if quick:
            x = x[:QUICK_N if split == "train" else QUICK_TEST]
        np.save(work / f"{split}.npy", x)
        out[split] = x
    return {"dataset": f"Fashion-MNIST, IDX files in {data_dir}",
            "binarisation": f"static, once: pixel ~ Bernoulli(grey / 255), numpy default_rng({BINARISE_SEED}) "
                            f"for train, ({BINARISE_SEED + 1}) for test",
            "n_train": int(len(out["train"])), "n_test": int(len(out["test"])),
            "train_mean_pixel": float(out["train"].mean())}


def make_init(work: Path, repeat: int) -> None:
    """Initial weights shared by every trainer of one repeat: torch's nn.Linear default,
    U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weights and biases, from seed ``repeat``."""
    import numpy as np
    rng = np.random.default_rng(1000 + repeat)
    layers = {"fc1": (D, H), "fc21": (H, Z), "fc22": (H, Z), "fc3": (Z, H), "fc4": (H, D)}
    init = {}
    for name, (fan_in, fan_out) in layers.items():
        bound = 1.0 / np.sqrt(fan_in)
        init[name + "_w"] = rng.uniform(-bound, bound, (fan_in, fan_out)).astype(np.float32)
        init[name + "_b"] = rng.uniform(-bound, bound, fan_out).astype(np.float32)
    np.savez(work / f"init-{repeat}.npz", **init)


def test_elbo(weights: dict, x, eps) -> float:
    """The one test ELBO: mean over ``x`` of log p(x|z) - KL(q(z|x)||N(0,I)), analytic KL, one
    reparameterised z per image from the fixed noise ``eps``, float64."""
    import numpy as np
    w = {k: np.asarray(v, dtype=np.float64) for k, v in weights.items()}
    h = np.tanh(x @ w["fc1_w"] + w["fc1_b"])
    mu = h @ w["fc21_w"] + w["fc21_b"]
    logvar = LOGVAR_BOUND * np.tanh((h @ w["fc22_w"] + w["fc22_b"]) / LOGVAR_BOUND)
    z = mu + np.exp(0.5 * logvar) * eps
    logits = np.tanh(z @ w["fc3_w"] + w["fc3_b"]) @ w["fc4_w"] + w["fc4_b"]
    recon = (x * logits - np.logaddexp(0.0, logits)).sum(1)
    kl = -0.5 * (1 + logvar - mu ** 2 - np.exp(logvar)).sum(1)
    return float(np.mean(recon - kl))


def python_for(trainer: str) -> str | None:
    if trainer == "fit":
        return sys.executable
    py = PEERS_VENV / "bin" / "python"
    return str(py) if py.exists() else None


def child_env(threads: int, src: Path | None = None) -> dict:
    env = dict(os.environ)
    env.update({"OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads),
                "OPENBLAS_NUM_THREADS": str(threads), "XLA_FLAGS": "--xla_cpu_multi_thread_eigen=true",
                "JAX_PLATFORMS": "cpu", "TF_CPP_MIN_LOG_LEVEL": "2", "TQDM_DISABLE": "1",
                "PYTHONWARNINGS": "ignore"})
    if src is not None:    # the fit row: import vae_core from this checkout
        env["PYTHONPATH"] = str(src) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


def _reason(stderr: str) -> str:
    lines = [ln for ln in stderr.strip().splitlines() if ln.strip()]
    errors = [ln for ln in lines if "Error" in ln or "error" in ln]
    return (errors[-1] if errors else (lines[-1] if lines else "no output")).strip()[:300]


def summarise(trainer: str, runs: list) -> dict:
    ok = [r for r in runs if "error" not in r]
    if not ok:
        return {"trainer": trainer, "available": False,
                "reason": runs[0]["error"] if runs else "not run", "runs": runs}
    per_epoch = [statistics.fmean(r["seconds"][1:]) for r in ok]
    elbos = [r["test_elbo"] for r in ok]
    return {"trainer": trainer, "available": True, "repeats_ok": len(ok), "repeats_failed": len(runs) - len(ok),
            "s_per_epoch_median": statistics.median(per_epoch), "s_per_epoch_min": min(per_epoch),
            "s_per_epoch_max": max(per_epoch), "s_per_epoch": per_epoch,
            "warmup_s_median": statistics.median(r["seconds"][0] for r in ok),
            "test_elbo_median": statistics.median(elbos), "test_elbo_min": min(elbos),
            "test_elbo_max": max(elbos), "versions": ok[0]["versions"], "notes": ok[0]["notes"],
            "torch_threads": ok[0].get("torch_threads"), "runs": runs}


def print_table(rows: list) -> None:
    fit = next((r for r in rows if r["trainer"] == "fit" and r["available"]), None)
    print(f"\n{'trainer':<10} {'s/epoch':>8} {'min–max':>15} {'÷ fit':>6} {'test ELBO':>10} {'warm-up s':>10}")
    for r in rows:
        if not r["available"]:
            print(f"{r['trainer']:<10} unavailable: {r['reason']}")
            continue
        ratio = f"{r['s_per_epoch_median'] / fit['s_per_epoch_median']:.2f}" if fit else "—"
        span = f"{r['s_per_epoch_min']:.2f}–{r['s_per_epoch_max']:.2f}"
        print(f"{r['trainer']:<10} {r['s_per_epoch_median']:>8.2f} {span:>15} {ratio:>6} "
              f"{r['test_elbo_median']:>10.2f} {r['warmup_s_median']:>10.2f}")
    print("(÷ fit: the trainer's median s/epoch over fit's; above 1 is slower than fit. test ELBO: median "
          "over repeats, nats, higher is better.)")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--setup", action="store_true", help="make benchmarks/.peers-venv and install the peers")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--epochs", type=int, default=1, help="timed epochs after the warm-up epoch")
    p.add_argument("--peers", default=",".join(TRAINERS), help=f"comma-separated, from {','.join(TRAINERS)}")
    p.add_argument("--quick", action="store_true",
                   help=f"smoke test: {QUICK_N} training / {QUICK_TEST} test images, 1 repeat")
    p.add_argument("--threads", type=int, default=THREADS)
    p.add_argument("--timeout", type=float, default=900, help="seconds allowed to one subprocess")
    p.add_argument("--json", default=None, help=f"where to write the results (default {RESULTS.relative_to(ROOT)}; "
                                                "--quick writes nowhere unless given)")
    p.add_argument("--fit-src", default=str(ROOT),
                   help="the checkout whose vae_core the fit row imports (default: this one)")
    p.add_argument("--data-dir", default=str(DATA_DIR), help="folder of Fashion-MNIST's IDX .gz files")
    p.add_argument("--note", default="", help="a note stored in the JSON (e.g. the machine was shared)")
    # the child's side
    p.add_argument("--child", choices=TRAINERS, help=argparse.SUPPRESS)
    p.add_argument("--work", help=argparse.SUPPRESS)
    p.add_argument("--repeat", type=int, default=0, help=argparse.SUPPRESS)
    p.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    p.add_argument("--out", help=argparse.SUPPRESS)
    args = p.parse_args(argv)

    if args.child:
        run_child(args)
        return 0
    if args.setup:
        return setup()

    trainers = [t.strip() for t in args.peers.split(",") if t.strip()]
    unknown = set(trainers) - set(TRAINERS)
    if unknown or not trainers:
        p.error(f"--peers takes names from {','.join(TRAINERS)}, got {args.peers!r}")
    repeats = 1 if args.quick else args.repeats
    if repeats < 1 or args.epochs < 1:
        p.error("--repeats and --epochs must be at least 1")

    import numpy as np
    fit_src = Path(args.fit_src).resolve()
    if not (fit_src / "vae_core" / "__init__.py").exists():
        p.error(f"--fit-src {fit_src} has no vae_core/")
    work = Path(tempfile.mkdtemp(prefix="vae-peers-"))
    started = time.time()
    machine = _machine()
    target = Path(args.json) if args.json else (None if args.quick else RESULTS)
    runs = {t: [] for t in trainers}
    data_info: dict = {}

    def report(final: bool) -> None:
        """Summarise what has run so far; the JSON is rewritten after every subprocess (complete: false
        until the end), so an interrupted run keeps what it measured."""
        rows = [summarise(t, runs[t]) for t in trainers]
        machine["load_average_at_end"] = list(os.getloadavg())
        if final:
            print_table(rows)
            loads = [", ".join(f"{v:.1f}" for v in machine[k]) for k in ("load_average_at_start", "load_average_at_end")]
            print(f"load average (1, 5, 15 min) at start {loads[0]}, at end {loads[1]} on {machine['cores']} cores; "
                  f"wall {time.time() - started:.0f} s")
        fit_row = next((r for r in rows if r["trainer"] == "fit" and r["available"]), None)
        if fit_row:
            for r in rows:
                if r["available"]:
                    r["ratio_to_fit"] = r["s_per_epoch_median"] / fit_row["s_per_epoch_median"]
        result = {
            "benchmark": "benchmarks/peers.py",
            "date": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(started)),
            "wall_s": time.time() - started,
            "complete": final,
            "note": args.note,
            "fit_src": {"path": str(fit_src), **_checkout(fit_src)},
            "settings": {"model": f"{D}-{H}-{Z} VAE, tanh, Bernoulli likelihood, encoder log-variance "
                                  f"soft-clamped {LOGVAR_BOUND:g}*tanh(logvar/{LOGVAR_BOUND:g})",
                         "batch_size": BATCH, "optimizer": "Adam", "lr": LR, "samples_per_example": 1,
                         "init": "shared per repeat: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) from numpy seed 1000+repeat",
                         "warmup_epochs": 1, "timed_epochs": args.epochs, "repeats": repeats, "quick": args.quick,
                         "order": "round robin, rotated by one trainer every repeat; one fresh subprocess each",
                         "timing": "perf_counter around each epoch's training loop only; s/epoch = mean of the "
                                   "timed epochs of a repeat; median and range over repeats",
                         "test_elbo": f"mean over the binarised test set of log p(x|z) - KL (analytic), one z per "
                                      f"image from fixed N(0, I) noise (numpy seed {EVAL_SEED}), float64, "
                                      f"computed by this script from each trainer's weights",
                         **data_info},
            "threads": {"torch.set_num_threads": args.threads, "cpu_affinity": f"first {args.threads} cores",
                        "env": {k: v for k, v in child_env(args.threads).items()
                                if k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "XLA_FLAGS",
                                         "JAX_PLATFORMS")}},
            "machine": machine,
            "results": rows,
        }
        if target is not None:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(json.dumps(result, indent=2) + "\n")
            if final:
                print(f"wrote {target}")

    try:
        data_info.update(make_data(work, Path(args.data_dir), args.quick))
        x_test = np.load(work / "test.npy").astype(np.float64)
        eps = np.random.default_rng(EVAL_SEED).standard_normal((len(x_test), Z))
        for r in range(repeats):
            make_init(work, r)
            order = trainers[r % len(trainers):] + trainers[:r % len(trainers)]
            for t in order:
                py = python_for(t)
                if py is None:
                    runs[t].append({"repeat": r, "error": f"no {PEERS_VENV.relative_to(ROOT)}: "
                                                          f"run `python benchmarks/peers.py --setup`"})
                    print(f"repeat {r + 1}/{repeats} {t:<9} unavailable (no peers venv)", flush=True)
                    continue
                out = work / f"{t}-{r}.json"
                cmd = [py, str(Path(__file__).resolve()), "--child", t, "--work", str(work), "--repeat", str(r),
                       "--epochs", str(args.epochs), "--threads", str(args.threads), "--seed", str(r),
                       "--out", str(out)]
                t0 = time.perf_counter()
                try:
                    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=args.timeout,
                                          env=child_env(args.threads, fit_src if t == "fit" else None), cwd=str(ROOT))
                    error = None if proc.returncode == 0 and out.exists() else _reason(proc.stderr)
                except subprocess.TimeoutExpired:
                    error = f"timed out after {args.timeout:.0f} s"
                wall = time.perf_counter() - t0
                if error:
                    runs[t].append({"repeat": r, "error": error, "process_wall_s": wall})
                    print(f"repeat {r + 1}/{repeats} {t:<9} FAILED: {error}", flush=True)
                    report(final=False)
                    continue
                info = json.loads(out.read_text())
                info["test_elbo"] = test_elbo(dict(np.load(out.with_suffix(".npz"))), x_test, eps)
                info.update(repeat=r, position=order.index(t), process_wall_s=wall)
                runs[t].append(info)
                print(f"repeat {r + 1}/{repeats} {t:<9} epochs {' '.join(f'{s:.2f}' for s in info['seconds'])} s "
                      f"(first is warm-up), test ELBO {info['test_elbo']:.2f}, process {wall:.1f} s", flush=True)
                report(final=False)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    report(final=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
