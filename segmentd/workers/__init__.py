"""Background work: the loops a server process runs beside the API.

Each worker takes its dependencies (engine, backend, clock) explicitly and is started and
stopped by the one Supervisor in the app's lifespan (supervisor.py): the dispatcher
(dispatcher.py), the host sweeper (hosts.py), the drift check (drift.py) and the chassis
watcher (chassis.py). Workers sit above the services, whose rules they apply, and below
the API.
"""
