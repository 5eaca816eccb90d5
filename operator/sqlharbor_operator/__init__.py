"""The sqlharbor operator (kopf): scheduling, dispatch, status, restore planning.

Layers, imports pointing down only:
    handlers  (kopf registration; the only module that imports kopf handlers' decorators)
    controller (the async loop: tick, dispatch, accounting, liveness, GC)
    state      (the in-memory view of every watched object)
    scheduling / accounting / health / dispatch (pure functions over models)
Imports the shared core (``sqlharbor``) and never the agent.
"""

__version__ = "0.1.0"
