"""L-BFGS over a batch of independent problems at once (numpy, float64).

Each row of `x0_KxP` is one start; all rows advance together through array ops, and a row leaves the
batch when it converges, so the cost tracks the starts still moving. Used for the multi-start grids
(Chinchilla's 4,500 starts) and for bootstrap refits (one row per resample).

Why not `jax.vmap(optax.lbfgs ...)`: measured on this 2-core CPU, the vmapped zoom / backtracking
line searches cost ~0.2-1 s per L-BFGS iteration whatever the batch size (XLA:CPU runs the batched
while-loops op by op) plus ~10 s of compilation, i.e. slower than the scipy loop it replaces; this
version does the 4,500-start grid in about a second (benchmarks/fit_speed.py).
"""

from typing import Callable

import numpy as np

# fg(x_kxP, rows) -> (f_k, g_kxP); `rows` indexes the original batch (per-row data, e.g. bootstrap weights).
ValueAndGrad = Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]


@np.errstate(invalid="ignore", over="ignore")  # a row gone non-finite gets a NaN direction and is reset
def _direction(g, S, Y, rho, gamma, order):
  """Two-loop recursion, batched over rows: returns -H g."""
  q = g.copy()
  alphas = []
  for j in order:  # newest -> oldest
    a = rho[:, j] * np.einsum("kp,kp->k", S[:, j], q)
    q -= a[:, None] * Y[:, j]
    alphas.append(a)
  r = gamma[:, None] * q
  for j, a in zip(reversed(order), reversed(alphas)):
    b = rho[:, j] * np.einsum("kp,kp->k", Y[:, j], r)
    r += S[:, j] * (a - b)[:, None]
  return -r


def minimize(fg: ValueAndGrad, x0_KxP: np.ndarray, *, max_iter: int = 1000, memory: int = 10,
             ftol: float = 1e-12, gtol: float = 1e-10, c1: float = 1e-4, max_linesearch: int = 40
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """Minimizes K independent problems. Returns (x_KxP, f_K, iterations_K).

  A row stops when its relative decrease in one iteration is <= ftol, when max|g| <= gtol |f| (a unit
  step in any parameter would change f by less than gtol of itself), or when the backtracking
  (Armijo) line search fails to decrease it (it is then as good as it gets).
  """
  x = np.array(x0_KxP, dtype=np.float64)
  K, P = x.shape
  f, g = fg(x, np.arange(K))
  S = np.zeros((K, memory, P))
  Y = np.zeros((K, memory, P))
  rho = np.zeros((K, memory))
  # The first step has unit length: the scale of the problem is unknown until one pair is stored.
  gamma = 1.0 / np.maximum(np.linalg.norm(g, axis=1), 1e-300)
  iters = np.zeros(K, dtype=int)
  active = np.flatnonzero(np.isfinite(f) & np.all(np.isfinite(g), axis=1))
  for it in range(max_iter):
    if active.size == 0:
      break
    slot = it % memory
    order = [(slot - 1 - j) % memory for j in range(min(it, memory))]
    ga = g[active]
    d = _direction(ga, S[active], Y[active], rho[active], gamma[active], order)
    dg = np.einsum("kp,kp->k", d, ga)
    bad = ~(dg < 0)  # not a descent direction: forget the memory, take a scaled gradient step
    if bad.any():
      rows = active[bad]
      rho[rows] = 0.0
      gamma[rows] = 1.0 / np.maximum(np.linalg.norm(g[rows], axis=1), 1e-300)
      d[bad] = -gamma[rows, None] * g[rows]
      dg[bad] = np.einsum("kp,kp->k", d[bad], g[rows])

    # Backtracking: every row tries t = 1 first; rows that fail Armijo halve t and retry together.
    t = np.ones(active.size)
    x_new, f_new, g_new = x[active].copy(), np.full(active.size, np.nan), g[active].copy()
    pending = np.arange(active.size)
    for _ in range(max_linesearch):
      rows = active[pending]
      xt = x[rows] + t[pending, None] * d[pending]
      ft, gt = fg(xt, rows)
      ok = ft <= f[rows] + c1 * t[pending] * dg[pending]  # NaN compares False: a failed trial
      acc = pending[ok]
      x_new[acc], f_new[acc], g_new[acc] = xt[ok], ft[ok], gt[ok]
      pending = pending[~ok]
      if pending.size == 0:
        break
      t[pending] *= 0.5
    moved = np.isfinite(f_new)

    s = x_new - x[active]
    y = g_new - g[active]
    sy = np.einsum("kp,kp->k", s, y)
    yy = np.einsum("kp,kp->k", y, y)
    with np.errstate(invalid="ignore", over="ignore"):  # NaN/inf pairs (unmoved rows) are not kept
      keep = moved & (sy > 1e-12 * np.sqrt(yy * np.einsum("kp,kp->k", s, s))) & (sy > 1e-200)
    S[active, slot] = np.where(keep[:, None], s, 0.0)
    Y[active, slot] = np.where(keep[:, None], y, 0.0)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):  # rows not kept are masked out
      rho[active, slot] = np.where(keep, 1.0 / sy, 0.0)
      gamma[active] = np.where(keep, sy / yy, gamma[active])

    f_old = f[active]
    x[active[moved]], f[active[moved]], g[active[moved]] = x_new[moved], f_new[moved], g_new[moved]
    iters[active] += 1
    small_step = (f_old - f[active]) <= ftol * np.maximum(np.abs(f_old), 1e-300)
    small_grad = np.max(np.abs(g[active]), axis=1) <= gtol * np.abs(f[active])
    active = active[moved & ~small_step & ~small_grad]
  return x, f, iters
