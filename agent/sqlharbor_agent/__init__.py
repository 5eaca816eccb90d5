"""The sqlharbor VM agent: registration, discovery, job execution, engine plugins.

Imports the shared core (``sqlharbor``) and never the operator.
"""

__version__ = "0.1.0"
