"""Allow ``python -m aicodec``."""

from aicodec.cli import main

main()
