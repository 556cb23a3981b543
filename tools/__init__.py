"""Developer harnesses, probes and porting scripts: run from the checkout as
``python -m tools.NAME``; none of them is installed with the package."""
