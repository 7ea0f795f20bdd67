"""Plain PyTorch reference steps for the timings in `just bench` and the notes.

Each function builds the same problem as problems/<name>.toml (network, point counts, losses)
and one Adam step, with input derivatives taken the way the original code takes them:
torch.autograd.grad(create_graph=True) for continuous-time models and the double-backward
"forward gradient" trick for the per-column x-derivatives of discrete-time models. Prints the
median wall time of a step in milliseconds.

    python benches/reference/step.py --problem burgers_cont_fwd [--steps 100] [--threads 2]
"""

import argparse
import math
import statistics
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
    """Butcher table (A, b) of the q-stage Gauss-Legendre method (stable construction)."""
    xi, w = np.polynomial.legendre.leggauss(q)
    c, b = (xi + 1) / 2, w / 2
    leg = [np.polynomial.legendre.Legendre.basis(k) for k in range(q + 1)]
    phi = np.array([[math.sqrt(2 * k + 1) * leg[k](x) for k in range(q)] for x in xi])
    integ = np.array(
        [[c[i] if k == 0 else (leg[k + 1](xi[i]) - leg[k - 1](xi[i])) / (2 * math.sqrt(2 * k + 1))
          for k in range(q)] for i in range(q)])
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
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(1234)
    dev = torch.device(args.device)
    params, loss_fn = PROBLEMS[args.problem](dev)
    params = list(params)
    opt = torch.optim.Adam(params, lr=1e-3)

    def step():
        opt.zero_grad(set_to_none=True)
        loss = loss_fn()
        loss.backward()
        opt.step()

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
    print(f"{args.problem}: median {1e3 * statistics.median(times):.3f} ms/step over {args.steps} "
          f"steps (torch {torch.__version__}, {args.device}, {args.threads} threads)")


if __name__ == "__main__":
    main()
