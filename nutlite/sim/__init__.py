"""UPS simulators for tests and demos (nothing here has a real UPS).

* :mod:`nutlite.sim.q1` and :mod:`nutlite.sim.apc`: a Megatec Q1 UPS and an APC Smart-UPS (sans-IO
  models) and their pseudo-terminal servers (:mod:`nutlite.sim.pty`);
* :mod:`nutlite.sim.script`: what the models share, among it the script interpreter and its action table;
* :mod:`nutlite.sim.main`: ``nutlite sim q1|apc [--link PATH] [--script FILE]``.
"""
