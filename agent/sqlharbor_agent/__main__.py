"""``python -m sqlharbor_agent``: same as the ``sqlharbor-agent`` script."""

from sqlharbor_agent.main import main

main()
