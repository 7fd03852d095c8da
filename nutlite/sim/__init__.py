"""UPS simulators for tests and demos (nothing here has a real UPS).

* :mod:`nutlite.sim.q1`: a Megatec Q1 UPS model (sans-IO) and its pseudo-terminal server.
* :mod:`nutlite.sim.main`: ``nutlite sim q1 [--link PATH] [--script FILE]``.
"""
