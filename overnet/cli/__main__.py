"""`python -m overnet.cli` (e.g. under torchrun) runs the `overnet` command."""

from overnet.cli import main

main()
