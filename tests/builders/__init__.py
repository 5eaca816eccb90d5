"""Builders shared by the tests and the benchmarks (one copy of each helper).

- ``tests.builders.records``: ``BackupRecord`` / ``RecoveryPoint`` builders and synthetic
  backup histories (``History``, ``catalog_history``).
- ``tests.builders.stores``: an in-memory ``BlobStore`` and a wrapper that records the
  names every store is asked to read.
- ``tests.builders.kube``: ``FakeClient``, a ``KubeClient`` stand-in that records writes.
- ``tests.builders.operator``: operator objects (policies, databases, resolved targets,
  job results) with defaults that make sense.
- ``tests.builders.azurite``: a private Azurite blob service (vault integration tests and
  the benchmarks).
- ``tests.builders.simulated``: a hand-moved clock and in-memory backup streams for the
  simulated engine.
- ``tests.builders.keyvault_standin`` and ``tests.builders.aad_standin``: in-process
  stand-ins for Azure Key Vault's keys API and for the token endpoints (Entra ID v2, IMDS),
  over ``tests.builders.standin_http`` (a test CA and a loopback HTTP(S) server); the key
  tests (tests/integration/keys/).
- ``tests.builders.key_material``: checks that no private key, data key, client secret or
  token shows in a text.

Import the module you need (``from tests.builders.records import backup_record``): this
package imports nothing itself, so a benchmark does not pull in the agent or the operator.
The repository root must be on ``sys.path``: pytest puts it there (``pythonpath`` in
pyproject), and ``python -m benchmarks.run`` from the root has it as the working directory.
"""
