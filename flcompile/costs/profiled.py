"""A measured compute model: each side's seconds from a profile written by `flcompile profile`.

The cost tables see a node only as FLOPs and a count, so a profile plugs in through its
overall law (seconds = a + b·FLOPs, fitted over every measured node): a is the side's
overhead per node and 1/b its speed. `ProfiledComputeModel` is a `ComputeModel`, so every
solver, the baselines and the lower bound use the measured costs without knowing it.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import ClassVar

from flcompile.costs.node_cost import ComputeModel
from flcompile.errors import BadInputError


@dataclass(frozen=True)
class ProfiledComputeModel(ComputeModel):
    """The analytic model's shape with measured speeds and overheads.

    Attributes:
        profiles: side ("device", "edge") -> the profile file its costs came from.
    """

    profiles: dict[str, str] = field(default_factory=dict)
    kind: ClassVar[str] = "profiled"


def side_law(path: str, side: str) -> tuple[float, float]:
    """A profile's overall law as (overhead seconds per node, FLOP/s).

    Args:
        path: the profile file.
        side: "device" or "edge", for messages.

    Returns:
        (a_s, 1 / b_s_per_flop).

    Raises:
        BadInputError: the file is not a profile, or its law has no FLOP term.
    """
    from flcompile.profile.profile_json import read_overall

    law = read_overall(path)
    if law.b_s_per_flop <= 0:
        raise BadInputError(
            f"--{side}-profile {path}: the profile's law has no cost per FLOP",
            hint="profile a model with convolutions: flcompile profile MODEL -o FILE",
        )
    return law.a_s, 1.0 / law.b_s_per_flop


def profiled(
    compute: ComputeModel, device_profile: str | None, edge_profile: str | None
) -> ComputeModel:
    """`compute` with each profiled side's speed and overhead measured.

    Args:
        compute: the analytic model the other options describe.
        device_profile: the device's profile, or None.
        edge_profile: the edge's profile, or None.

    Returns:
        `compute` itself without profiles, else a ProfiledComputeModel.

    Raises:
        BadInputError: a profile cannot be read.
    """
    if device_profile is None and edge_profile is None:
        return compute
    changes: dict = {"profiles": {}}
    if device_profile is not None:
        changes["overhead_dev_s"], changes["device_flops"] = side_law(device_profile, "device")
        changes["profiles"]["device"] = device_profile
    if edge_profile is not None:
        changes["overhead_edge_s"], changes["edge_flops"] = side_law(edge_profile, "edge")
        changes["profiles"]["edge"] = edge_profile
    base = ProfiledComputeModel(
        compute.device_flops,
        compute.edge_flops,
        compute.overhead_dev_s,
        compute.overhead_edge_s,
        compute.edge_concurrency,
    )
    return replace(base, **changes)
