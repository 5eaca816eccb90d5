"""The ``sqlharbor-dev`` command line (:mod:`sqlharbor_devtools.cli.main`)."""
