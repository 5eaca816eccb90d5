"""Tests of the SQL Server engine plugin (no SQL Server needed)."""
