#!/usr/bin/env python3
"""Eager-PyTorch reference for `pinas bench train`: the same nets, the same step, the same thread count.

usage: bench_train_pytorch.py NET.json --batch B [--steps N] [--warmup W] [--threads T] [--json]

NET.json must be the explicit pinas-net/1 form (`pinas space show SPACE.json --save NET.json`).
Builds the supernet (open act slots = sum softmax(alpha) * op(x); open pool slots likewise) and the
decided net (relu / maxpool, else the first candidate), written the way a PyTorch user would write
them (nn.Module, DARTS-style mixed op), and times forward + cross-entropy + backward + SGD (momentum
0.9, weight decay 5e-4) on random inputs, reporting medians in ms like `pinas bench train --json`.
Needs python3-torch (Debian 12: apt-get install python3-torch, built on the same libtorch 1.13.1).
"""
import argparse
import copy
import json
import statistics
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


def patch_relu(x, ph, pw):
    h, w = x.shape[2], x.shape[3]
    with torch.no_grad():
        m = (F.avg_pool2d(x.detach(), (ph, pw), (ph, pw), ceil_mode=True) > 0).to(x.dtype)
        m = m.repeat_interleave(ph, 2).repeat_interleave(pw, 3)[:, :, :h, :w]
    return x * m


class Slot(nn.Module):
    def __init__(self, node, channels):
        super().__init__()
        self.node = node
        self.cands = node["candidates"]
        choice = node.get("choice")
        self.open = choice is None and len(self.cands) > 1
        self.active = self.cands if self.open else [choice if choice is not None else self.cands[0]]
        if "poly" in self.active:
            m = channels if node.get("poly_per_channel") else 1
            self.w0 = nn.Parameter(torch.full((m,), 0.005))
            self.w1 = nn.Parameter(torch.ones(m))
            self.b = nn.Parameter(torch.zeros(m))
            self.s = node.get("poly_scale", 1.0)
        if self.open:
            self.alpha = nn.Parameter(1e-3 * torch.randn(len(self.cands)))

    def op(self, name, x):
        n = self.node
        if name == "relu":
            return F.relu(x)
        if name == "identity":
            return x
        if name == "poly":
            shp = (1, -1, 1, 1)
            return (self.w0.view(shp) * self.s) * x * x + self.w1.view(shp) * x + self.b.view(shp)
        if name.startswith("patch_relu:"):
            ph, pw = (int(v) for v in name.split(":")[1].split("x"))
            return patch_relu(x, ph, pw)
        k, st, p = n["kernel"], n.get("stride", 1), n.get("padding", 0)
        if name == "maxpool":
            return F.max_pool2d(x, k, st, p)
        if name == "avgpool":
            return F.avg_pool2d(x, k, st, p)
        raise ValueError(name)

    def forward(self, x):
        if not self.open:
            return self.op(self.active[0], x)
        w = F.softmax(self.alpha, dim=-1)
        return sum(w[i] * self.op(c, x) for i, c in enumerate(self.cands))


class Net(nn.Module):
    def __init__(self, spec):
        super().__init__()
        self.nodes = spec["nodes"]
        ids = {"input": 0}
        self.inputs = []
        self.mods = nn.ModuleList()
        shapes = [spec["input"][0]]
        for i, n in enumerate(self.nodes):
            ins = [ids[s] for s in n.get("inputs", [])] or [i]  # default: the previous node
            self.inputs.append(ins)
            c_in = shapes[ins[0]]
            op = n["op"]
            if op == "conv2d":
                k = n["kernel"]
                kh, kw = (k, k) if isinstance(k, int) else k
                m = nn.Conv2d(c_in, n["out_channels"], (kh, kw), n.get("stride", 1), n.get("padding", 0), groups=n.get("groups", 1),
                              bias=n.get("bias", False))
                c = n["out_channels"]
            elif op == "batchnorm":
                m, c = nn.BatchNorm2d(c_in, eps=n.get("eps", 1e-5)), c_in
            elif op == "linear":
                m, c = nn.Linear(c_in, n["out_features"], bias=n.get("bias", False)), n["out_features"]
            elif op in ("act", "pool"):
                m, c = Slot(n, c_in), c_in
            else:
                m, c = nn.Identity(), c_in
                if op == "flatten":
                    c = n["shape"][0] if "shape" in n else c_in
            self.mods.append(m)
            shapes.append(c)
            ids[n["id"]] = i + 1

    def forward(self, x):
        acts = [x]
        for n, m, ins in zip(self.nodes, self.mods, self.inputs):
            a = acts[ins[0]]
            op = n["op"]
            if op == "add":
                y = a + acts[ins[1]]
            elif op == "global_avgpool":
                y = a.mean((2, 3))
            elif op == "flatten":
                y = a.flatten(1)
            elif op == "linear":
                y = m(a.flatten(1))
            else:
                y = m(a)
            acts.append(y)
        return acts[-1]


def decided(spec):
    d = copy.deepcopy(spec)
    for n in d["nodes"]:
        if n["op"] in ("act", "pool") and n.get("choice") is None and len(n["candidates"]) > 1:
            want = "relu" if n["op"] == "act" else "maxpool"
            n["choice"] = want if want in n["candidates"] else n["candidates"][0]
    return d


def time_net(spec, batch, steps, warmup):
    torch.manual_seed(1)
    net = Net(spec)
    net.train()
    weights = [p for name, p in net.named_parameters() if not name.endswith("alpha")]
    opt = torch.optim.SGD(weights, lr=0.01, momentum=0.9, weight_decay=5e-4)
    c, h, w = spec["input"]
    x = torch.rand(batch, c, h, w) * 2 - 1
    y = torch.arange(batch) % spec["num_classes"]
    times = []
    for k in range(warmup + steps):
        t0 = time.perf_counter()
        loss = F.cross_entropy(net(x), y)
        opt.zero_grad(set_to_none=True)
        for name, p in net.named_parameters():
            if name.endswith("alpha"):
                p.grad = None
        loss.backward()
        opt.step()
        if k >= warmup:
            times.append((time.perf_counter() - t0) * 1e3)
    opens = sum(1 for n in spec["nodes"] if n["op"] in ("act", "pool") and n.get("choice") is None and len(n["candidates"]) > 1)
    return {"median_ms": statistics.median(times), "min_ms": min(times), "mean_ms": statistics.mean(times), "open_slots": opens}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("net")
    ap.add_argument("--batch", type=int, required=True)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    spec = json.load(open(a.net))
    if "nodes" not in spec:
        sys.exit(f"{a.net}: not an explicit pinas-net/1 file (write one with `pinas space show SPACE --save NET.json`)")
    if a.threads > 0:
        torch.set_num_threads(a.threads)
    r = {"bench": "train-pytorch", "space": spec.get("name", ""), "batch": a.batch, "threads": torch.get_num_threads(),
         "torch": torch.__version__, "steps": a.steps, "supernet": time_net(spec, a.batch, a.steps, a.warmup),
         "decided": time_net(decided(spec), a.batch, a.steps, a.warmup)}
    if a.json:
        print(json.dumps(r, indent=1))
    else:
        print(f"PyTorch {torch.__version__} train step of {r['space']}, batch {a.batch}, {r['threads']} thread(s):")
        for k in ("supernet", "decided"):
            print(f"  {k:9s} {r[k]['median_ms']:9.2f} ms  (min {r[k]['min_ms']:.2f})")


if __name__ == "__main__":
    main()
