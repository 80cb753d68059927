"""The `ea` backend: an Expert Advisor inside the trader's own terminal pushes the account's state to us and executes
the close commands we queue (docs/EA-PROTOCOL.md). This package is the terminal side of it, with no Django:

* `protocol.py` — version, paths, headers, the signature recipe and the push payload's validation;
* `terminal_api.py` — `EaTerminalApi`: the MetaTrader5 function API answered from the latest accepted push, so the
  one adapter (TerminalGateway) serves this backend like the others; order_send queues a command and waits;
* `emulator.py` — a Python EA that drives any object with the module's API and speaks exactly the protocol;
* `MT5Guard.mq5` — the real EA, function by function parallel to the emulator.

Where pushes and commands are stored is a port (`EaStore`), provided by the Django app `ea` at start-up.
"""
