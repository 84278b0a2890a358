"""python -m centerdet <command> ...: the same as the `centerdet` console script."""
from centerdet.cli import main

main()
