"""Pure rules of SQL Server backups, with no I/O: backup records (``backupset``), LSN chains
(``chain``), the restore planner (``planner``), chain-aware retention (``retention``) and
auto-heal (``autoheal``).  Used by the operator, the agent, the CLI and the vault."""
