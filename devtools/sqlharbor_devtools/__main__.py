"""``python -m sqlharbor_devtools``: same as the ``sqlharbor-dev`` script."""

from sqlharbor_devtools.cli.main import main

main()
