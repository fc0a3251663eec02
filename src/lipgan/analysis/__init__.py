"""Probes and plots that reproduce the analyses of the five papers (docs/methods.md §10), each a command.

Kinds (``PROBES``): ``grad-norms`` (GraN Fig. 3), ``finite-diff`` (GraN Fig. 4), ``lipschitz-bound`` (GraN
App. D, Fig. 8), ``domain`` (LipReg Fig. 1), ``layer-grads`` (BSSN Fig. 2), ``eq2-ratio`` (BSSN Fig. 3),
``param-variance`` (BSSN Fig. 7), ``sn-ratio`` (BSSN Fig. 20) and ``value-surface`` (GN Fig. 3, 2-D only).

Use on a run: ``run_probes(run_dir, "all")`` (what ``lipgan probe`` calls). On plain objects:
``run_probe(kind, make_context(D, real, fake, out_dir, loss="hinge", constraint={"gradnorm": "gran"}))``.
During training: ``cheap_probe_scalars(D, critic, loss, real, fake)``.
"""

from lipgan.analysis import domain, grad_probes, layers, lipschitz_bound, surface  # noqa: F401  (registers)
from lipgan.analysis.base import PROBES, Probe, register_probe
from lipgan.analysis.command import run_probes
from lipgan.analysis.context import ProbeContext, make_context
from lipgan.analysis.runner import applicable_probes, context_from_run, run_probe, run_probe_kinds
from lipgan.constraints.critic import build_critic
from lipgan.training.probes import cheap_probe_scalars

__all__ = [
    "PROBES",
    "Probe",
    "ProbeContext",
    "applicable_probes",
    "build_critic",
    "cheap_probe_scalars",
    "context_from_run",
    "make_context",
    "register_probe",
    "run_probe",
    "run_probe_kinds",
    "run_probes",
]
