"""Local AKS Resource Manager emulator: HTTPS, managed-identity tokens, AKS rules, faults.

Run it with `python -m local.aks_emulator`, drive it from tests with
`local.aks_emulator.control.EmulatorProcess`, or in-process with `start_server()`.
"""

from .server import RunningEmulator, start_server

__all__ = ["RunningEmulator", "start_server"]
