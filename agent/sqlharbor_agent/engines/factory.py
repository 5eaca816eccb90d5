"""Open the engine an instance is configured with (``engine: simulated | sqlserver``)."""

from __future__ import annotations

from sqlharbor.errors import ErrorCode, InvalidInput
from sqlharbor_agent.config import InstanceConfig
from sqlharbor_agent.engines.base import Engine


def open_engine(config: InstanceConfig, instance_name: str) -> Engine:
    if config.engine == "simulated":
        if config.simulated is None:
            raise InvalidInput(
                f"instance {config.name}: engine simulated needs simulated.rootDir",
                code=ErrorCode.INVALID_AGENT_CONFIG,
            )
        from sqlharbor_agent.engines.simulated import open_simulated_engine

        return open_simulated_engine(
            config.simulated.root_dir, instance_name, time_zone=config.simulated.time_zone
        )
    from sqlharbor_agent.engines.sqlserver import open_sqlserver_engine

    engine: Engine = open_sqlserver_engine(config.sqlserver or {}, instance_name)
    return engine
