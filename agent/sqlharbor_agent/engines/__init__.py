"""Engine plugins: the one narrow interface the agent codes against, and its implementations.

``base`` holds the Protocol; ``simulated`` is the durable on-disk stand-in used by the demo
and the tests; ``sqlserver`` is SQL Server through pyodbc (T-SQL) and VDI (data).
"""
