"""``python -m fcnlab`` (and ``torchrun -m fcnlab train ...``) runs the CLI."""

from fcnlab.cli import main

if __name__ == "__main__":
    main()
