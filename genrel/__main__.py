"""``python -m genrel``: the same as the ``genrel`` command (handy under ``accelerate launch -m``)."""

from genrel.cli import main

main()
