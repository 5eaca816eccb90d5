"""``python -m sqlharbor_operator``: same as the ``sqlharbor-operator`` script."""

from sqlharbor_operator.main import main

main()
