"""The tasks' Warp twins, one module per task, each mirroring its JAX module."""
from warp_bridge.tasks.franka import FrankaWarp
from warp_bridge.tasks.pointmass1d import PointMass1DWarp
from warp_bridge.tasks.pointmass2d import PointMass2DWarp
from warp_bridge.tasks.tblock import TBlockWarp

FACTORIES = {"pointmass1d": PointMass1DWarp, "pointmass2d": PointMass2DWarp, "tblock": TBlockWarp,
             "franka": FrankaWarp}
