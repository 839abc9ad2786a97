"""netsim: a discrete-event simulator of the networks that train large language models.

Layers (data flows one way): config -> workload -> engine -> collectives/network -> report.
"""

__version__ = "0.1.0"
