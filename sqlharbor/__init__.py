"""sqlharbor: Kubernetes-native backup for SQL Server on virtual machines.

The shared core. The operator (``sqlharbor_operator``) and the agent (``sqlharbor_agent``)
both import from here; nothing here imports either of them, kopf, or pyodbc.
"""

__version__ = "0.1.0"
