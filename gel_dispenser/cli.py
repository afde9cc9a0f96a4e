"""`python dispenser.py`: the command line, start-up warnings, and the order things start and stop in."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading

from gel_dispenser import __version__
from gel_dispenser.config import Config, ConfigError, read_config
from gel_dispenser.device import Dispenser
from gel_dispenser.sender import Sender
from gel_dispenser.simulate import Simulator
from gel_dispenser.spool import Spool
from gel_toolkit import setup_logging

log = logging.getLogger("dispenser")

EXIT_OK, EXIT_CONFIG, EXIT_BACKLOG = 0, 2, 3
DESCRIPTION = "The Raspberry Pi side: an IR sensor, a servo, a local spool and a sender to the usage server."


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(prog="dispenser.py", description=DESCRIPTION)
    parser.add_argument("--config", default="config.toml", help="config.toml with a [dispenser] table")
    parser.add_argument("--simulate", action="store_true", help="mock pins and simulated hands, no hardware")
    parser.add_argument("--hands", type=int, metavar="N", help="with --simulate: exactly N presences, then exit")
    parser.add_argument("--mean-interval", type=float, metavar="S",
                        help="simulated people: mean seconds between hands (with a door counter: between entries)")
    parser.add_argument("--flush", action="store_true", help="deliver the spool and exit")
    parser.add_argument("--flush-timeout", type=float, default=10.0, metavar="S",
                        help="--hands/--flush: seconds allowed for delivery (default 10)")
    parser.add_argument("--version", action="version", version=__version__)
    for key in ("id", "token", "server-url", "spool"):
        parser.add_argument(f"--{key}", help=f"override [dispenser] {key.replace('-', '_')}")
    for key in ("entry-pin", "exit-pin"):
        parser.add_argument(f"--{key}", type=int, metavar="BCM", help=f"override [dispenser] {key.replace('-', '_')}")
    args = parser.parse_args(argv)
    if args.hands is not None and not args.simulate:
        parser.error("--hands needs --simulate")
    if args.hands is not None and args.hands < 0:
        parser.error("--hands must be >= 0")
    return args


def _deliver_and_exit(sender: Sender, spool: Spool, timeout: float) -> int:
    delivered = sender.wait_empty(timeout)
    left = spool.backlog()
    log.log(logging.INFO if delivered else logging.ERROR, "flush dispenser=%s delivered=%s backlog=%d",
            sender.cfg.id, "yes" if delivered else "no", left)
    return EXIT_OK if left == 0 else EXIT_BACKLOG


def _open_dispenser(cfg: Config, spool: Spool, sender: Sender, simulate: bool) -> Dispenser | None:
    """The devices on the GPIO (or mock pins), or None, logged, when they cannot be opened."""
    pin_factory = None
    if simulate:
        from gpiozero.pins.mock import MockFactory, MockPWMPin

        pin_factory = MockFactory(pin_class=MockPWMPin)
    try:
        return Dispenser(cfg, spool, wake=sender.wake, refill=sender.request_refill, pin_factory=pin_factory)
    except Exception as exc:  # gpiozero raises many kinds; none is recoverable here
        log.error("gpio dispenser=%s error=%r hint='not a Raspberry Pi? try --simulate'", cfg.id, exc)
        return None


def _dispense(args: argparse.Namespace, dispenser: Dispenser, stop: threading.Event) -> None:
    """Until a signal (or N simulated presences)."""
    if args.hands is not None:
        Simulator(dispenser, stop).presences(args.hands)
    elif args.simulate:
        mean = args.mean_interval or dispenser.cfg.simulate_mean_interval_s
        threading.Thread(target=Simulator(dispenser, stop).random_hands, args=(mean,), daemon=True).start()
        stop.wait()
    else:
        stop.wait()


def _run(args: argparse.Namespace, cfg: Config, spool: Spool, sender: Sender, stop: threading.Event) -> int:
    if args.flush:
        return _deliver_and_exit(sender, spool, args.flush_timeout)
    dispenser = _open_dispenser(cfg, spool, sender, args.simulate)
    if dispenser is None:
        return EXIT_CONFIG
    with dispenser:
        _dispense(args, dispenser, stop)
    if args.hands is not None:
        return _deliver_and_exit(sender, spool, args.flush_timeout)
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    """Run the dispenser until SIGTERM/SIGINT; return the exit code (0 ok, 2 config, 3 events left)."""
    args = parse_args(argv)
    overrides = {"id": args.id, "token": args.token, "server_url": args.server_url, "spool": args.spool,
                 "entry_pin": args.entry_pin, "exit_pin": args.exit_pin}
    try:
        cfg, warnings = read_config(args.config, overrides)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    setup_logging(cfg.log_level, [cfg.token])
    for warning in warnings:
        log.warning("config dispenser=%s warning=%r", cfg.id, warning)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    spool = Spool(cfg.spool)
    sender = Sender(cfg, spool).start()
    log.info("start dispenser=%s version=%s server=%s backlog=%d simulate=%s", cfg.id, __version__, cfg.server_url,
             spool.backlog(), args.simulate)
    code = _run(args, cfg, spool, sender, stop)
    quick = args.flush or args.hands is not None or code == EXIT_CONFIG
    stopped = sender.stop(0 if quick else cfg.shutdown_flush_s)
    log.info("exit dispenser=%s code=%d backlog=%d", cfg.id, code, spool.backlog())
    if stopped:  # a request hanging past its timeout still holds the connection: exit without closing it
        spool.close()
    return code
