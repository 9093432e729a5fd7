"""The wizard's steps in order (imported lazily by the app)."""

from .data import DataScreen
from .hardware import HardwareScreen
from .model import ModelScreen
from .review import ReviewScreen
from .task import TaskScreen

__all__ = ["TaskScreen", "ModelScreen", "DataScreen", "HardwareScreen", "ReviewScreen"]
