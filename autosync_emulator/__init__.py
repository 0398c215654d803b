"""A faithful, stateful, seeded local emulator of the AutoSync Shop Manager API."""
from .core import DEFAULT_SETTINGS, EmulatorCore
from .server import Emulator

__all__ = ["Emulator", "EmulatorCore", "DEFAULT_SETTINGS"]
