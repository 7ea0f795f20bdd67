"""Plain PyTorch reference for one training step of burgers_cont_fwd.

The same problem as problems/burgers_cont_fwd.toml: an 8x20 tanh MLP on (x, t) scaled to
[-1, 1], 100 data points and 10,456 collocation points, MSE losses, residual
u_t + u u_x - (0.01/pi) u_xx computed with torch.autograd.grad(create_graph=True) as in the
original code, and an Adam step. Prints the median wall time of a step in milliseconds.

    python benches/reference/burgers_cont_fwd_step.py [--steps 100] [--threads 2] [--device cpu]
"""

import argparse
import math
import statistics
import time

import torch


def mlp(widths):
    layers = []
    for i in range(len(widths) - 1):
        layers.append(torch.nn.Linear(widths[i], widths[i + 1]))
        if i < len(widths) - 2:
            layers.append(torch.nn.Tanh())
    return torch.nn.Sequential(*layers)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(1234)
    dev = torch.device(args.device)

    lb = torch.tensor([-1.0, 0.0], device=dev)
    ub = torch.tensor([1.0, 0.99], device=dev)
    net = mlp([2] + [20] * 8 + [1]).to(dev)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    nu = 0.01 / math.pi

    x_u = lb + (ub - lb) * torch.rand(100, 2, device=dev)
    u_data = -torch.sin(math.pi * x_u[:, :1])
    x_f = (lb + (ub - lb) * torch.rand(10456, 2, device=dev)).requires_grad_(True)

    def forward(x):
        return net(2.0 * (x - lb) / (ub - lb) - 1.0)

    def step():
        opt.zero_grad(set_to_none=True)
        loss_u = ((forward(x_u) - u_data) ** 2).mean()
        u = forward(x_f)
        du = torch.autograd.grad(u, x_f, torch.ones_like(u), create_graph=True)[0]
        u_x, u_t = du[:, :1], du[:, 1:]
        u_xx = torch.autograd.grad(u_x, x_f, torch.ones_like(u_x), create_graph=True)[0][:, :1]
        f = u_t + u * u_x - nu * u_xx
        loss = loss_u + (f**2).mean()
        loss.backward()
        opt.step()
        return loss

    def sync():
        if dev.type == "cuda":
            torch.cuda.synchronize()

    for _ in range(args.warmup):
        step()
    sync()
    times = []
    for _ in range(args.steps):
        t0 = time.perf_counter()
        step()
        sync()
        times.append(time.perf_counter() - t0)
    print(f"burgers_cont_fwd: median {1e3 * statistics.median(times):.3f} ms/step "
          f"over {args.steps} steps (torch {torch.__version__}, {args.device}, {args.threads} threads)")


if __name__ == "__main__":
    main()
