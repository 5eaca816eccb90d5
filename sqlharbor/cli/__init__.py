"""The ``sqlharbor`` command line (also installed as the kubectl plugin ``kubectl-sqlharbor``)."""
