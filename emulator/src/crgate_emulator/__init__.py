"""A loopback gRPC emulator of Yandex Container Registry's scanner, operation and image APIs.

    with Emulator(demo_scenario()) as emu:
        channel = grpc.insecure_channel(emu.address)

The scenario format is documented in ``crgate_emulator.scenario``; ``demo.yaml`` is the built-in data.
"""

from crgate_emulator.scenario import Scenario, demo_scenario, load_scenario, scenario_from_dict, scenario_of
from crgate_emulator.server import Emulator
from crgate_emulator.stats import EmulatorStats

__all__ = [
    "Emulator",
    "EmulatorStats",
    "Scenario",
    "demo_scenario",
    "load_scenario",
    "scenario_from_dict",
    "scenario_of",
]
