"""Plain PyTorch reference steps for the timings in `just bench` and the notes.

Each function builds the same problem as problems/<name>.toml (network, point counts, losses)
and one Adam step, with input derivatives taken the way the original code takes them:
torch.autograd.grad(create_graph=True) for continuous-time models and the double-backward
"forward gradient" trick for the per-column x-derivatives of discrete-time models. Prints the
median wall time of a step in milliseconds.

    python benches/reference/step.py --problem burgers_cont_fwd [--steps 100] [--threads 2]
        [--device cuda] [--mode eager|graph] [--json]

`--mode graph` captures one whole step (loss, backward, Adam with `capturable=True`) in a CUDA
graph after a warm-up on a side stream and replays it, as PINNs-Torch's CUDA-graph mode does.
`--json` prints one line {"problem", "mode", "median_ms"} for `pinn-bench --reference`.
`--serve` (for `pinn-bench`, implies `--json`) sets the problem up once, prints {"ready": true},
and then times a fresh warm-up and measurement for every line it reads from stdin, one JSON
line each, until stdin closes: a timing then follows ours within seconds instead of after the
setup, while the machine's speed may have drifted.
"""

import argparse
import json
import math
import statistics
import sys
import time

import numpy as np
import torch


def mlp(widths):
    layers = []
    for i in range(len(widths) - 1):
        layers.append(torch.nn.Linear(widths[i], widths[i + 1]))
        if i < len(widths) - 2:
            layers.append(torch.nn.Tanh())
    return torch.nn.Sequential(*layers)


def grad(y, x):
    return torch.autograd.grad(y, x, torch.ones_like(y), create_graph=True)[0]


def fwd_gradient(u, x):
    """d u[:, j] / d x for every column j (the original scripts' double-backward trick)."""
    dummy = torch.ones_like(u, requires_grad=True)
    g = torch.autograd.grad(u, x, dummy, create_graph=True)[0]
    return torch.autograd.grad(g, dummy, torch.ones_like(g), create_graph=True)[0]


def gauss_legendre(q):
    """Butcher table (A, b) of the q-stage Gauss-Legendre method (stable construction).

    A[i, j] = b[j] sum_k phi_k(x_j) int_{-1}^{x_i} phi_k with the orthonormal Legendre
    polynomials phi_k; every P_k(x_i) comes from one Vandermonde matrix (a few milliseconds
    for q = 500, where evaluating each polynomial on its own took a minute).
    """
    xi, w = np.polynomial.legendre.leggauss(q)
    c, b = (xi + 1) / 2, w / 2
    p = np.polynomial.legendre.legvander(xi, q)  # p[i, k] = P_k(xi[i]), k = 0 ..= q
    norm = np.sqrt(2 * np.arange(q) + 1)
    phi = p[:, :q] * norm
    integ = np.empty((q, q))
    integ[:, 0] = c
    integ[:, 1:] = (p[:, 2:q + 1] - p[:, 0:q - 1]) / (2 * norm[1:])
    return integ @ phi.T * b[None, :], b


def burgers_cont_fwd(dev):
    lb, ub = torch.tensor([-1.0, 0.0], device=dev), torch.tensor([1.0, 0.99], device=dev)
    net = mlp([2] + [20] * 8 + [1]).to(dev)
    nu = 0.01 / math.pi
    x_u = lb + (ub - lb) * torch.rand(100, 2, device=dev)
    u_data = -torch.sin(math.pi * x_u[:, :1])
    x_f = (lb + (ub - lb) * torch.rand(10456, 2, device=dev)).requires_grad_(True)

    def forward(x):
        return net(2.0 * (x - lb) / (ub - lb) - 1.0)

    def loss():
        u = forward(x_f)
        du = grad(u, x_f)
        u_x, u_t = du[:, :1], du[:, 1:]
        u_xx = grad(u_x, x_f)[:, :1]
        f = u_t + u * u_x - nu * u_xx
        return ((forward(x_u) - u_data) ** 2).mean() + (f**2).mean()

    return net.parameters(), loss


def burgers_cont_inv(dev):
    lb, ub = torch.tensor([-1.0, 0.0], device=dev), torch.tensor([1.0, 0.99], device=dev)
    net = mlp([2] + [20] * 8 + [1]).to(dev)
    lam = [torch.zeros(1, device=dev, requires_grad=True),
           torch.full((1,), -6.0, device=dev, requires_grad=True)]
    x = (lb + (ub - lb) * torch.rand(2000, 2, device=dev)).requires_grad_(True)
    u_data = -torch.sin(math.pi * x.detach()[:, :1]) * torch.exp(-x.detach()[:, 1:])

    def loss():
        u = net(2.0 * (x - lb) / (ub - lb) - 1.0)
        du = grad(u, x)
        u_x, u_t = du[:, :1], du[:, 1:]
        u_xx = grad(u_x, x)[:, :1]
        f = u_t + lam[0] * u * u_x - torch.exp(lam[1]) * u_xx
        return ((u - u_data) ** 2).mean() + (f**2).mean()

    return list(net.parameters()) + lam, loss


def schrodinger_cont_fwd(dev):
    lb, ub = torch.tensor([-5.0, 0.0], device=dev), torch.tensor([5.0, math.pi / 2], device=dev)
    net = mlp([2] + [100] * 4 + [2]).to(dev)
    x0 = torch.stack([10 * torch.rand(50, device=dev) - 5, torch.zeros(50, device=dev)], 1)
    h0 = 2.0 / torch.cosh(x0[:, :1])
    tb = (math.pi / 2) * torch.rand(50, 1, device=dev)
    xl = torch.cat([torch.full_like(tb, -5.0), tb], 1).requires_grad_(True)
    xr = torch.cat([torch.full_like(tb, 5.0), tb], 1).requires_grad_(True)
    x_f = (lb + (ub - lb) * torch.rand(20000, 2, device=dev)).requires_grad_(True)

    def forward(x):
        uv = net(2.0 * (x - lb) / (ub - lb) - 1.0)
        return uv[:, :1], uv[:, 1:]

    def loss():
        u0, v0 = forward(x0)
        total = ((u0 - h0) ** 2).mean() + (v0**2).mean()
        (ul, vl), (ur, vr) = forward(xl), forward(xr)
        total = total + ((ul - ur) ** 2).mean() + ((vl - vr) ** 2).mean()
        total = total + ((grad(ul, xl)[:, :1] - grad(ur, xr)[:, :1]) ** 2).mean()
        total = total + ((grad(vl, xl)[:, :1] - grad(vr, xr)[:, :1]) ** 2).mean()
        u, v = forward(x_f)
        du, dv = grad(u, x_f), grad(v, x_f)
        u_xx, v_xx = grad(du[:, :1], x_f)[:, :1], grad(dv[:, :1], x_f)[:, :1]
        f_u = du[:, 1:] + 0.5 * v_xx + (u**2 + v**2) * v
        f_v = dv[:, 1:] - 0.5 * u_xx - (u**2 + v**2) * u
        return total + (f_u**2).mean() + (f_v**2).mean()

    return net.parameters(), loss


def ns_cont_inv(dev):
    lb = torch.tensor([1.0, -2.0, 0.0], device=dev)
    ub = torch.tensor([8.0, 2.0, 20.0], device=dev)
    net = mlp([3] + [20] * 8 + [2]).to(dev)
    lam = [torch.zeros(1, device=dev, requires_grad=True) for _ in range(2)]
    x = (lb + (ub - lb) * torch.rand(5000, 3, device=dev)).requires_grad_(True)
    u_data, v_data = torch.randn(5000, 1, device=dev), torch.randn(5000, 1, device=dev)

    def loss():
        out = net(2.0 * (x - lb) / (ub - lb) - 1.0)
        psi, p = out[:, :1], out[:, 1:]
        dpsi = grad(psi, x)
        u, v = dpsi[:, 1:2], -dpsi[:, :1]
        du, dv, dp = grad(u, x), grad(v, x), grad(p, x)
        u_xx, u_yy = grad(du[:, :1], x)[:, :1], grad(du[:, 1:2], x)[:, 1:2]
        v_xx, v_yy = grad(dv[:, :1], x)[:, :1], grad(dv[:, 1:2], x)[:, 1:2]
        f_u = du[:, 2:] + lam[0] * (u * du[:, :1] + v * du[:, 1:2]) + dp[:, :1] - lam[1] * (u_xx + u_yy)
        f_v = dv[:, 2:] + lam[0] * (u * dv[:, :1] + v * dv[:, 1:2]) + dp[:, 1:2] - lam[1] * (v_xx + v_yy)
        return (((u - u_data) ** 2).sum() + ((v - v_data) ** 2).sum()
                + (f_u**2).sum() + (f_v**2).sum())

    return list(net.parameters()) + lam, loss


def discrete(dev, layers, q, dt, n0, n1, order, rhs_fn, periodic=False, dirichlet=False):
    """A discrete-time step: forward (n1 == 0, outputs q + 1) or inverse (two snapshots)."""
    a, b = gauss_legendre(q)
    forward = n1 == 0
    if forward:
        w_t = torch.tensor(np.vstack([a, b[None, :]]).T, dtype=torch.float32, device=dev)
    a_t = torch.tensor(a.T, dtype=torch.float32, device=dev)
    m_t = torch.tensor((np.ones((q, 1)) * b[None, :] - a).T, dtype=torch.float32, device=dev)
    net = mlp(layers + [q + 1 if forward else q]).to(dev)
    lam = [torch.zeros(1, device=dev, requires_grad=True), torch.full((1,), -6.0, device=dev, requires_grad=True)]
    x0 = (2 * torch.rand(n0, 1, device=dev) - 1).requires_grad_(True)
    x1 = (2 * torch.rand(max(n1, 1), 1, device=dev) - 1).requires_grad_(True)
    xb = torch.tensor([[-1.0], [1.0]], device=dev, requires_grad=True)
    u0, u1 = torch.cos(math.pi * x0.detach()), torch.cos(math.pi * x1.detach())

    def rhs(x):
        u = net(x)
        ds = [u]
        for _ in range(order):
            ds.append(fwd_gradient(ds[-1], x))
        return u, rhs_fn(ds, lam)

    def loss():
        u, f = rhs(x0)
        if forward:
            total = ((u - dt * f[:, :q] @ w_t - u0) ** 2).sum()
        else:
            total = ((u - dt * f @ a_t - u0) ** 2).sum()
            u, f = rhs(x1)
            total = total + ((u + dt * f @ m_t - u1) ** 2).sum()
        if periodic:
            ub = net(xb)
            ub_x = fwd_gradient(ub, xb)
            total = total + ((ub[0] - ub[1]) ** 2).sum() + ((ub_x[0] - ub_x[1]) ** 2).sum()
        if dirichlet:
            total = total + (net(xb) ** 2).sum()
        return total

    return list(net.parameters()) + lam, loss


def kdv_disc_inv(dev):
    return discrete(dev, [1, 50, 50, 50, 50], 50, 0.6, 199, 201, 3,
                    lambda d, l: -l[0] * d[0] * d[1] - torch.exp(l[1]) * d[3])


def burgers_disc_inv(dev):
    return discrete(dev, [1, 50, 50, 50, 50], 81, 0.8, 199, 201, 2,
                    lambda d, l: -l[0] * d[0] * d[1] + torch.exp(l[1]) * d[2])


def burgers_disc_fwd(dev):
    nu = 0.01 / math.pi
    return discrete(dev, [1, 50, 50, 50], 500, 0.8, 250, 0, 2,
                    lambda d, l: -d[0] * d[1] + nu * d[2], dirichlet=True)


def ac_disc_fwd(dev):
    return discrete(dev, [1, 200, 200, 200, 200], 100, 0.8, 200, 0, 2,
                    lambda d, l: 5.0 * d[0] - 5.0 * d[0] ** 3 + 0.0001 * d[2], periodic=True)


PROBLEMS = {
    "burgers_cont_fwd": burgers_cont_fwd,
    "burgers_cont_inv": burgers_cont_inv,
    "schrodinger_cont_fwd": schrodinger_cont_fwd,
    "ns_cont_inv": ns_cont_inv,
    "kdv_disc_inv": kdv_disc_inv,
    "burgers_disc_inv": burgers_disc_inv,
    "burgers_disc_fwd": burgers_disc_fwd,
    "ac_disc_fwd": ac_disc_fwd,
}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--problem", default="burgers_cont_fwd", choices=sorted(PROBLEMS))
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--mode", default="eager", choices=["eager", "graph"])
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--serve", action="store_true")
    args = parser.parse_args()
    if args.mode == "graph" and not args.device.startswith("cuda"):
        parser.error("--mode graph needs a CUDA device")
    torch.set_num_threads(args.threads)
    torch.manual_seed(1234)
    dev = torch.device(args.device)
    params, loss_fn = PROBLEMS[args.problem](dev)
    params = list(params)
    graph = args.mode == "graph"
    opt = torch.optim.Adam(params, lr=1e-3, capturable=graph)

    def step():
        opt.zero_grad(set_to_none=True)
        loss = loss_fn()
        loss.backward()
        opt.step()

    if graph:
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(max(args.warmup, 3)):
                step()
        torch.cuda.current_stream().wait_stream(side)
        captured = torch.cuda.CUDAGraph()
        opt.zero_grad(set_to_none=True)
        with torch.cuda.graph(captured):
            loss_fn().backward()
            opt.step()
        step = captured.replay

    def measure():
        for _ in range(args.warmup):
            step()
        if dev.type == "cuda":
            torch.cuda.synchronize()
        times = []
        for _ in range(args.steps):
            t0 = time.perf_counter()
            step()
            if dev.type == "cuda":
                torch.cuda.synchronize()
            times.append(time.perf_counter() - t0)
        return 1e3 * statistics.median(times)

    def report(median_ms):
        return json.dumps({"problem": args.problem, "mode": args.mode, "median_ms": median_ms})

    if args.serve:
        print(json.dumps({"ready": True}), flush=True)
        for _ in sys.stdin:
            print(report(measure()), flush=True)
        return
    median_ms = measure()
    if args.json:
        print(report(median_ms))
    else:
        print(f"{args.problem}: median {median_ms:.3f} ms/step over {args.steps} steps "
              f"(torch {torch.__version__}, {args.device}, {args.mode}, {args.threads} threads)")


if __name__ == "__main__":
    main()
