"""The demo and the end-to-end harness: real operator and agent processes against the local
control plane, with the simulated engine under a workload.

``stack`` starts and stops the processes (shared by ``sqlharbor-dev demo`` and tests/e2e);
``scenario`` holds the demo's resources.
"""
