"""`python -m lipgan ...`, which `torchrun -m lipgan train ...` needs."""

from lipgan.cli import main

raise SystemExit(main())
