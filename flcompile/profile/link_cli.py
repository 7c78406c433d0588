"""`flcompile profile --server HOST:PORT -o FILE`: measure the link to a running edge server."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from flcompile.arg_types import count, host_port, positive
from flcompile.command import require_extra

DEFAULT_OUT = "link-profile.json"


def add_link_args(p: argparse.ArgumentParser) -> None:
    """Add the link probe's options to `flcompile profile`'s parser."""
    from flcompile.profile.link_probe import DEFAULT_SIZES_KB

    g = p.add_argument_group("the link (--server)")
    g.add_argument(
        "--server",
        dest="server",
        type=host_port,
        metavar="HOST:PORT",
        help="measure the link to this `flcompile serve` (its gRPC address) instead of a model",
    )
    g.add_argument(
        "--sizes",
        dest="sizes_kb",
        type=positive,
        nargs="+",
        metavar="kB",
        help="payload sizes in kB, 1 kB = 1000 bytes (default: "
        f"{' '.join(f'{s:g}' for s in DEFAULT_SIZES_KB)}, and larger ones where the "
        "largest takes little longer than the smallest: a fast link)",
    )
    g.add_argument(
        "--rounds",
        dest="rounds",
        type=count(2),
        default=9,
        metavar="N",
        help="timed requests per size, at most (default 9; each size's median is fitted)",
    )
    g.add_argument(
        "--time-limit",
        dest="time_limit",
        type=positive,
        default=30.0,
        metavar="S",
        help="start no request after S seconds, once every size was timed (default 30)",
    )
    g.add_argument(
        "--link-rate",
        dest="link_rate",
        type=positive,
        metavar="MB/s",
        help="pace each payload in the application first, as `flcompile run --link-rate`",
    )
    g.add_argument(
        "--timeout",
        dest="timeout",
        type=positive,
        default=60.0,
        metavar="S",
        help="how long one request may take (default 60)",
    )


def profile_link(args: argparse.Namespace) -> int:
    """Probe the server, fit the link law, write the link profile and print the result.

    Raises:
        UsageError: tritonclient is not installed.
        BadInputError: the server cannot be reached or probed, the fit fails, or the
            output is not flcompile's to replace.
    """
    require_extra("tritonclient.grpc", "device", "profile --server")
    from flcompile.device.owned_files import check_writable, write_file
    from flcompile.device.pacer import pacer_for
    from flcompile.profile.device_send import fit_device_send
    from flcompile.profile.link_fit import fit_link
    from flcompile.profile.link_json import link_profile_dict
    from flcompile.profile.link_probe import (
        DEFAULT_SIZES_KB,
        ProbeSettings,
        probe_link,
        sizes_from_kb,
    )

    out = check_writable(args.out or DEFAULT_OUT, "json", "-o")
    settings = ProbeSettings(
        sizes=sizes_from_kb(args.sizes_kb or DEFAULT_SIZES_KB),
        grow=args.sizes_kb is None,
        rounds=args.rounds,
        time_limit_s=args.time_limit,
        timeout_s=args.timeout,
    )
    probed = probe_link(args.server, settings, pacer=pacer_for(args.link_rate))
    samples = probed.samples
    fit = fit_link(samples)
    device = fit_device_send(probed.cpu_samples, probed.cpu_share)
    profile = link_profile_dict(args.server, fit, args.link_rate, device)
    text = json.dumps(profile, indent=2) + "\n"
    write_file(out, "json", "-o", lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))
    smallest, largest = fit.points[0], fit.points[-1]
    print(
        f"link to {args.server}: {fit.rate_MBps:.4g} MB/s, latency {fit.latency_s * 1e3:.3g} ms "
        f"per message (medians of {len(samples)} requests at {len(fit.points)} sizes, "
        f"{smallest.nbytes / 1e3:g}-{largest.nbytes / 1e3:g} kB; worst size "
        f"{fit.worst_error():.1%} off the law"
        + (f"; paced at {args.link_rate:g} MB/s" if args.link_rate else "")
        + f"); the device's own work {device.s_per_message * 1e3:.3g} ms per message + "
        f"{device.s_per_byte * 1e9:.3g} ms per MB (CPU share {device.cpu_share:.3g}); wrote {out}"
    )
    print(
        f"plan with: flcompile MODEL --link-profile {out}  "
        f"(the same as --rate {fit.rate_MBps:.4g} --latency {fit.latency_s:.3g})"
    )
    return 0
