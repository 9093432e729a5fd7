"""The wizard's steps in order (imported lazily by the app)."""

from sage_ft_tui.tui.screens.wizard.data import DataScreen
from sage_ft_tui.tui.screens.wizard.hardware import HardwareScreen
from sage_ft_tui.tui.screens.wizard.model import ModelScreen
from sage_ft_tui.tui.screens.wizard.review import ReviewScreen
from sage_ft_tui.tui.screens.wizard.task import TaskScreen

__all__ = ["TaskScreen", "ModelScreen", "DataScreen", "HardwareScreen", "ReviewScreen"]
