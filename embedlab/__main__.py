"""``python -m embedlab`` (also what ``torchrun -m embedlab`` runs)."""

from embedlab.cli import main

main()
