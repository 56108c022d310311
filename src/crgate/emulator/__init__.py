"""A loopback gRPC emulator of Yandex Container Registry's scanner, operation and image APIs.

    with Emulator(demo_scenario()) as emu:
        channel = grpc.insecure_channel(emu.address)

The scenario format is documented in ``crgate.emulator.scenario``; ``demo.yaml`` is the built-in data.
"""

from crgate.emulator.scenario import Scenario, demo_scenario, load_scenario, scenario_from_dict
from crgate.emulator.server import Emulator
from crgate.emulator.stats import EmulatorStats

__all__ = ["Emulator", "EmulatorStats", "Scenario", "demo_scenario", "load_scenario", "scenario_from_dict"]
