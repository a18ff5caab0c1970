"""Run the ``optinc`` command from a checkout: ``python cli.py compile ...``."""

from optinc_compiler.cli import main

if __name__ == "__main__":
    main()
