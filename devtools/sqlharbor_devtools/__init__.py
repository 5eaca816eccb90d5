"""sqlharbor's development tools: NOT part of the product wheel (DESIGN §3, §6).

- :mod:`.devenv`: the local control plane (etcd and kube-apiserver built from the Go modules
  in ``devtools/controlplane-go/`` and cached, Azurite, kubectl) for tests, the demo, the
  benchmarks and a person who wants to poke at it;
- :mod:`.demo`: the demo's resources and the ``Stack`` of real operator, agent and workload
  processes (shared with tests/e2e and the benchmarks);
- :mod:`.cli`: the ``sqlharbor-dev`` command (``up|down|env|status|build|apply-crds``,
  ``demo``, ``simulate``, ``simulate-compare``).

Dependencies point one way: this package imports ``sqlharbor``, ``sqlharbor_operator`` and
``sqlharbor_agent``; none of them imports it.  It needs a sqlharbor checkout for config/,
the Go modules and Azurite (:mod:`.devenv.checkout`).
"""
